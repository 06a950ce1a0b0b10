using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes.Api;
using Ambient.Mesh.Tests.Kubernetes.Api.Support;
using Ambient.Ztunnel;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Hosting;
using Ambient.Ztunnel.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Tests.Ztunnel;

/// <summary>
/// Two agents that learn the mesh from the Kubernetes API (issue 8). No API server can run on this machine, so they
/// talk to an in-process server that speaks the real wire format (JSON lists with resourceVersion, chunked watch
/// streams, bookmarks, 410; tests/Mesh.Tests/Kubernetes/Api/Support). Every address dialed is loopback.
/// </summary>
public sealed class KubernetesAgentTests
{
    private static int s_next;

    private sealed class Cluster : IAsyncDisposable
    {
        public required FakeKubeApiServer Api { get; init; }
        public required string Dir { get; init; }
        public required IPAddress Client { get; init; }
        public required IPAddress Server { get; init; }
        public required IPAddress Server2 { get; init; }
        public required IPAddress Vip { get; init; }
        public required IPAddress Vip2 { get; init; }
        public EchoServer Echo { get; set; } = null!;
        public EchoServer Echo2 { get; set; } = null!;
        public StringWriter LogB { get; } = new();
        public List<IHost> Hosts { get; } = [];

        public async ValueTask DisposeAsync()
        {
            foreach (var h in Hosts)
            {
                try
                {
                    await h.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));
                }
                catch (Exception)
                {
                }
                h.Dispose();
            }
            foreach (var e in new[] { Echo, Echo2 })
            {
                if (e is not null)
                {
                    await e.DisposeAsync();
                }
            }
            await Api.DisposeAsync();
            Directory.Delete(Dir, recursive: true);
        }
    }

    private static JsonObject Obj(string yamlishJson) => JsonNode.Parse(yamlishJson)!.AsObject();

    private static JsonObject Pod(string name, string node, string sa, IPAddress ip, string app, int port) => Obj($$$"""
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"{{{name}}}","namespace":"shop","uid":"uid-{{{name}}}","labels":{"app":"{{{app}}}"}},
         "spec":{"nodeName":"{{{node}}}","serviceAccountName":"{{{sa}}}","containers":[{"name":"c","image":"i","ports":[{"name":"http","containerPort":{{{port}}}}]}]},
         "status":{"phase":"Running","podIP":"{{{ip}}}","podIPs":[{"ip":"{{{ip}}}"}],"conditions":[{"type":"Ready","status":"True"}]}}
        """);

    private static JsonObject Service(string name, IPAddress vip, string app) => Obj($$$"""
        {"apiVersion":"v1","kind":"Service","metadata":{"name":"{{{name}}}","namespace":"shop","uid":"svc-{{{name}}}"},
         "spec":{"clusterIP":"{{{vip}}}","clusterIPs":["{{{vip}}}"],"selector":{"app":"{{{app}}}"},"ports":[{"name":"http","port":80,"targetPort":"http","protocol":"TCP"}]}}
        """);

    private static async Task<Cluster> StartClusterAsync()
    {
        int k = Interlocked.Increment(ref s_next) % 200 + 1;
        int octet = 80 + Random.Shared.Next(15);
        var api = await FakeKubeApiServer.StartAsync();
        var c = new Cluster
        {
            Api = api,
            Dir = Directory.CreateTempSubdirectory("ambient-kube-").FullName,
            Client = IPAddress.Parse($"127.{octet}.{k}.10"),
            Server = IPAddress.Parse($"127.{octet}.{k}.20"),
            Server2 = IPAddress.Parse($"127.{octet}.{k}.21"),
            Vip = IPAddress.Parse($"127.{octet}.{k}.100"),
            Vip2 = IPAddress.Parse($"127.{octet}.{k}.101"),
        };
        try
        {
            c.Echo = new EchoServer(c.Server);
            // A second app on node-b's address: in shared mode node-b's HBONE listener serves one address, so the pod
            // created later reuses the address of the pod it replaces, as Kubernetes reuses pod IPs.
            c.Echo2 = new EchoServer(c.Server);
            api.Apply(KubeResource.Namespace, Obj("""{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","uid":"ns-shop","labels":{"istio.io/dataplane-mode":"ambient"}}}"""));
            api.Apply(KubeResource.Pod, Pod("client", "node-a", "client", c.Client, "client", 1));
            api.Apply(KubeResource.Pod, Pod("echo", "node-b", "echo", c.Server, "echo", c.Echo.EndPoint.Port));
            api.Apply(KubeResource.Service, Service("echo", c.Vip, "echo"));
            return c;
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
    }

    private static IHost BuildAgent(Cluster c, string node, IPAddress ip, StringWriter? accessLog = null)
    {
        string kubeconfig = TestKubeconfig.Write(Directory.CreateDirectory(Path.Combine(c.Dir, $"kubeconfig-{node}")).FullName, c.Api.Url);
        var host = InProcessAgent.Build(
            new AgentOptions
            {
                NodeName = node,
                StateDir = c.Dir,
                AccessLogWriter = TextWriter.Synchronized(accessLog ?? new StringWriter()),
                Kubernetes = new KubernetesApiOptions { KubeconfigPath = kubeconfig, InitialBackoff = TimeSpan.FromMilliseconds(100), MaxBackoff = TimeSpan.FromMilliseconds(500) },
            },
            ip);
        c.Hosts.Add(host);
        return host;
    }

    private static Ambient.Ztunnel.Agent AgentOf(IHost host) => host.Services.GetRequiredService<AgentService>().Agent;

    private static async Task<string?> EchoAsync(Ambient.Ztunnel.Agent a, IPAddress source, IPEndPoint target, string text)
    {
        var (socket, reply) = await Socks5Client.ConnectAsync(a.EndPoints["socks5"], source, target);
        using (socket)
        {
            if (reply != 0)
            {
                return null;
            }
            byte[] sent = Encoding.ASCII.GetBytes(text);
            await socket.SendAsync(sent);
            byte[] got = await Socks5Client.ReadToEndAsync(socket).WaitAsync(TimeSpan.FromSeconds(3)).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : []);
            return got.Length == 0 ? null : Encoding.ASCII.GetString(got);
        }
    }

    private static async Task<string> EchoOnceAsync(Ambient.Ztunnel.Agent a, IPAddress source, IPEndPoint target, string text)
    {
        var (socket, reply) = await Socks5Client.ConnectAsync(a.EndPoints["socks5"], source, target);
        using (socket)
        {
            Assert.True(reply == 0, $"SOCKS5 reply {reply}; node-a knows: {string.Join(", ", a.State.Current.Workloads.Select(w => $"{w.Namespace}/{w.Name}@{string.Join('+', w.WorkloadIps)}:{w.Protocol}"))}");
            byte[] sent = Encoding.ASCII.GetBytes(text);
            await socket.SendAsync(sent);
            var got = new byte[sent.Length];
            await Socks5Client.ReadExactlyAsync(socket, got);
            return Encoding.ASCII.GetString(got);
        }
    }

    [Fact]
    public async Task Readiness_waits_for_the_initial_sync_and_live_changes_reach_the_data_path()
    {
        await using var c = await StartClusterAsync();

        // The API server holds its pod list: the agent starts and listens, but is not ready until every kind has listed.
        c.Api.HoldLists(KubeResource.Pod);
        var hostB = BuildAgent(c, "node-b", c.Server, c.LogB);
        await hostB.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var b = AgentOf(hostB);
        var (notReady, _) = await GetAsync(b.EndPoints["readiness"], "/healthz/ready");
        Assert.Equal(503, notReady);
        c.Api.ReleaseLists();
        await EventuallyAsync(async () => (await GetAsync(b.EndPoints["readiness"], "/healthz/ready")).Status == 200, "node-b ready after the initial sync", 20_000);

        var hostA = BuildAgent(c, "node-a", c.Client);
        await hostA.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var a = AgentOf(hostA);
        await EventuallyAsync(() => a.Ready, "node-a ready", 20_000);

        // What was there at start-up carries traffic, service VIP -> pod through the named target port.
        Assert.Equal("hello", await EchoOnceAsync(a, c.Client, new IPEndPoint(c.Vip, 80), "hello"));

        // A pod and a service created after start-up are reached (the new pod replaces the old one at its address).
        c.Api.Delete(KubeResource.Pod, "shop", "echo");
        c.Api.Apply(KubeResource.Pod, Pod("echo2", "node-b", "echo2", c.Server, "echo2", c.Echo2.EndPoint.Port));
        c.Api.Apply(KubeResource.Service, Service("echo2", c.Vip2, "echo2"));
        await EventuallyAsync(
            () => a.State.Current.FindServiceByVip(c.Vip2) is not null && b.State.Current.FindWorkload("shop", "echo2") is not null
                && a.State.Current.FindWorkloadByIp(c.Server)?.Name == "echo2",
            "both agents learned echo2", 20_000);
        Assert.Equal("new pod", await EchoOnceAsync(a, c.Client, new IPEndPoint(c.Vip2, 80), "new pod"));

        // A policy added live denies it.
        c.Api.Apply(KubeResource.AuthorizationPolicy, Obj("""
            {"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"deny-client","namespace":"shop","uid":"ap-1"},
             "spec":{"action":"DENY","rules":[{"from":[{"source":{"principals":["cluster.local/ns/shop/sa/client"]}}]}]}}
            """));
        await EventuallyAsync(() => b.State.Current.FindPolicy("shop/deny-client") is not null, "node-b learned the policy", 20_000);
        Assert.Null(await EchoAsync(a, c.Client, new IPEndPoint(c.Vip2, 80), "denied"));
        await EventuallyAsync(() => c.LogB.ToString().Contains("DENY", StringComparison.Ordinal), "node-b logs the denial");

        // A deleted pod goes away.
        c.Api.Delete(KubeResource.Pod, "shop", "echo2");
        await EventuallyAsync(() => b.State.Current.FindWorkload("shop", "echo2") is null, "node-b dropped echo2", 20_000);
        await EventuallyAsync(() => a.State.Current.FindWorkload("shop", "echo2") is null, "node-a dropped echo2", 20_000);

        // /config_dump names the source.
        var (_, dump) = await GetAsync(b.EndPoints["admin"], "/config_dump");
        Assert.Contains("\"source\": \"kubernetes\"", dump, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_the_API_server_gone_the_agents_keep_their_state_stay_ready_and_resume()
    {
        await using var c = await StartClusterAsync();
        var hostB = BuildAgent(c, "node-b", c.Server);
        var hostA = BuildAgent(c, "node-a", c.Client);
        await hostB.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await hostA.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var a = AgentOf(hostA);
        var b = AgentOf(hostB);
        await EventuallyAsync(() => a.Ready && b.Ready, "both ready", 20_000);

        await c.Api.StopAsync();
        // Nothing withdrawn, still ready, traffic flows.
        await Task.Delay(500);
        Assert.True(a.Ready);
        Assert.Equal(200, (await GetAsync(a.EndPoints["readiness"], "/healthz/ready")).Status);
        Assert.Equal("still here", await EchoOnceAsync(a, c.Client, new IPEndPoint(c.Vip, 80), "still here"));

        // A change made while the agents were disconnected arrives when the server is back.
        c.Api.Apply(KubeResource.Pod, Pod("echo2", "node-b", "echo2", c.Server2, "echo2", c.Echo2.EndPoint.Port));
        await c.Api.RestartAsync();
        await EventuallyAsync(() => a.State.Current.FindWorkload("shop", "echo2") is not null, "node-a learned echo2 after the restart", 30_000);
    }

    private static async Task EventuallyAsync(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                Assert.Fail($"timed out waiting for: {what}");
            }
            await Task.Delay(20);
        }
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!await condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                Assert.Fail($"timed out waiting for: {what}");
            }
            await Task.Delay(20);
        }
    }

    private static async Task<(int Status, string Body)> GetAsync(IPEndPoint endpoint, string path)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var resp = await http.GetAsync(new Uri($"http://{endpoint}{path}"));
        return ((int)resp.StatusCode, await resp.Content.ReadAsStringAsync());
    }
}
