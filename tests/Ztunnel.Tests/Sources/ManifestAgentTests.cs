using System.Net;
using System.Text;
using Ambient.Mesh.Config;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Tests.Support;
using Microsoft.Extensions.Logging;
using Ambient.Ztunnel.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ambient.Ztunnel.Tests.Sources;

/// <summary>
/// Two agents on loopback that know the mesh only from Kubernetes manifests (issue 8's "done when"): pods, a service
/// with a named target port and a policy, all as a user would kubectl-apply them. Every dialed address is loopback.
/// </summary>
public sealed class ManifestAgentTests
{
    private static int s_next;

    private sealed class Node(IPAddress client, IPAddress server, IPAddress vip, string dir) : IAsyncDisposable
    {
        public IPAddress Client { get; } = client;
        public IPAddress Server { get; } = server;
        public IPAddress Vip { get; } = vip;
        public string Dir { get; } = dir;
        public StringWriter LogA { get; } = new();
        public StringWriter LogB { get; } = new();
        public EchoServer Echo { get; set; } = null!;
        public IHost? HostA { get; set; }
        public IHost? HostB { get; set; }
        public Agent A => HostA!.Services.GetRequiredService<AgentService>().Agent;
        public Agent B => HostB!.Services.GetRequiredService<AgentService>().Agent;

        public async ValueTask DisposeAsync()
        {
            foreach (IHost h in new[] { HostA, HostB }.OfType<IHost>())
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
            if (Echo is not null)
            {
                await Echo.DisposeAsync();
            }
            Directory.Delete(Dir, recursive: true);
        }
    }

    private static string Manifests(Node n) => $"""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          labels:
            istio.io/dataplane-mode: ambient
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: client
          namespace: shop
          labels: {"{"}app: client{"}"}
        spec:
          nodeName: node-a
          serviceAccountName: client
          containers: [{"{"}name: curl, image: curl{"}"}]
        status:
          podIP: {n.Client}
          podIPs: [{"{"}ip: {n.Client}{"}"}]
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: echo
          namespace: shop
          labels: {"{"}app: echo{"}"}
        spec:
          nodeName: node-b
          serviceAccountName: echo
          containers:
          - name: echo
            image: echo
            ports: [{"{"}name: http, containerPort: {n.Echo.EndPoint.Port}{"}"}]
        status:
          podIP: {n.Server}
          podIPs: [{"{"}ip: {n.Server}{"}"}]
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: echo
          namespace: shop
        spec:
          clusterIP: {n.Vip}
          selector: {"{"}app: echo{"}"}
          ports: [{"{"}name: http, port: 80, targetPort: http{"}"}]
        """;

    private const string DenyClient = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: deny-client
          namespace: shop
        spec:
          action: DENY
          rules:
          - from:
            - source:
                principals: ["cluster.local/ns/shop/sa/client"]
        """;

    private static async Task<Node> StartAsync()
    {
        int k = Interlocked.Increment(ref s_next) % 200 + 1;
        int octet = 20 + Random.Shared.Next(50);
        var n = new Node(
            IPAddress.Parse($"127.{octet}.{k}.10"),
            IPAddress.Parse($"127.{octet}.{k}.20"),
            IPAddress.Parse($"127.{octet}.{k}.100"),
            Directory.CreateTempSubdirectory("ambient-manifests-").FullName);
        try
        {
            n.Echo = new EchoServer(n.Server);
            Directory.CreateDirectory(Path.Combine(n.Dir, "mesh"));
            await File.WriteAllTextAsync(Path.Combine(n.Dir, "mesh", "shop.yaml"), Manifests(n));
            n.HostA = await StartHostAsync(n, "node-a", n.Client, n.LogA);
            n.HostB = await StartHostAsync(n, "node-b", n.Server, n.LogB);
            return n;
        }
        catch
        {
            await n.DisposeAsync();
            throw;
        }
    }

    /// <summary>The agent as ztunnel's Program composes it: the generic host with the manifest source as a hosted service.</summary>
    private static Task<IHost> StartHostAsync(Node n, string node, IPAddress ip, StringWriter log) => InProcessAgent.StartAsync(
        new AgentOptions
        {
            NodeName = node,
            StateDir = n.Dir,
            AccessLogWriter = TextWriter.Synchronized(log),
            Manifests = [Path.Combine(n.Dir, "mesh")],
        },
        ip);

    private static async Task<string> EchoThroughAsync(Node n, string text)
    {
        var (socket, reply) = await Socks5Client.ConnectAsync(n.A.EndPoints["socks5"], n.Client, new IPEndPoint(n.Vip, 80));
        using (socket)
        {
            Assert.Equal(0, reply);
            byte[] sent = Encoding.ASCII.GetBytes(text);
            await socket.SendAsync(sent);
            var got = new byte[sent.Length];
            await Socks5Client.ReadExactlyAsync(socket, got);
            return Encoding.ASCII.GetString(got);
        }
    }

    [Fact]
    public async Task AgentsThatKnowOnlyManifestsCarryTrafficUnderTheirPolicies()
    {
        await using var n = await StartAsync();

        // The service VIP resolves to the echo pod through its named target port, over HBONE with both identities.
        Assert.Equal("manifest mesh", await EchoThroughAsync(n, "manifest mesh"));
        await TwoNodeMesh.EventuallyAsync(() => n.LogB.ToString().Contains("spiffe://cluster.local/ns/shop/sa/client", StringComparison.Ordinal), "node-b logs the client's identity");
        await TwoNodeMesh.EventuallyAsync(() => n.LogA.ToString().Contains("spiffe://cluster.local/ns/shop/sa/echo", StringComparison.Ordinal), "node-a logs the echo pod's identity");

        // /config_dump says where each entry came from.
        var (status, dump) = await TwoNodeMesh.GetAsync(n.B.EndPoints["admin"], "/config_dump");
        Assert.Equal(200, status);
        Assert.Contains("\"source\": \"manifests:", dump, StringComparison.Ordinal);
        Assert.Contains("\"name\": \"manifests:", dump, StringComparison.Ordinal);

        // A policy added live (atomically: written beside, then renamed in) denies the next connection.
        string tmp = Path.Combine(n.Dir, "policy.yaml.tmp");
        await File.WriteAllTextAsync(tmp, DenyClient);
        File.Move(tmp, Path.Combine(n.Dir, "mesh", "policy.yaml"));
        await TwoNodeMesh.EventuallyAsync(() => n.B.State.Current.FindPolicy("shop/deny-client") is not null, "policy applied on node-b");
        var (denied, reply) = await Socks5Client.ConnectAsync(n.A.EndPoints["socks5"], n.Client, new IPEndPoint(n.Vip, 80));
        using (denied)
        {
            // SOCKS5 may answer success before the HBONE verdict; either way no byte comes back from the echo server.
            if (reply == 0)
            {
                await denied.SendAsync("x"u8.ToArray());
                byte[] echoed = await Socks5Client.ReadToEndAsync(denied).WaitAsync(TimeSpan.FromSeconds(20));
                Assert.Empty(echoed);
            }
        }
        await TwoNodeMesh.EventuallyAsync(() => n.LogB.ToString().Contains("DENY", StringComparison.Ordinal), "node-b logs the denial");
    }

    [Fact]
    public async Task ABrokenManifestEditKeepsTheLastGoodMesh()
    {
        await using var n = await StartAsync();
        Assert.Equal("before", await EchoThroughAsync(n, "before"));

        // A Pod with an invalid field: the whole edit is refused and the running mesh stays as it was.
        string bad = Manifests(n).Replace("serviceAccountName: echo", "serviceAccountName: [not, a, string]", StringComparison.Ordinal);
        string tmp = Path.Combine(n.Dir, "shop.yaml.tmp");
        await File.WriteAllTextAsync(tmp, bad);
        File.Move(tmp, Path.Combine(n.Dir, "mesh", "shop.yaml"), overwrite: true);
        await TwoNodeMesh.EventuallyAsync(
            () => n.B.Store.Sources.Any(s => s.Name.StartsWith("manifests:", StringComparison.Ordinal) && s.LastError is not null),
            "node-b reports the refused edit");
        Assert.Contains(n.B.Store.Sources.Single(s => s.Name.StartsWith("manifests:", StringComparison.Ordinal)).Errors, e => e.Contains("Pod shop/echo", StringComparison.Ordinal));
        Assert.Equal("after", await EchoThroughAsync(n, "after"));

        // An emptied directory would withdraw the whole mesh: refused too.
        File.Delete(Path.Combine(n.Dir, "mesh", "shop.yaml"));
        await TwoNodeMesh.EventuallyAsync(
            () => n.A.Store.Sources.Single(s => s.Name.StartsWith("manifests:", StringComparison.Ordinal)).Errors.Any(e => e.Contains("define nothing", StringComparison.Ordinal)),
            "node-a refuses the empty manifest set");
        Assert.Equal("still", await EchoThroughAsync(n, "still"));
    }
}
