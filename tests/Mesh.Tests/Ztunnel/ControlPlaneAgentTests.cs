using System.Net;
using System.Text;
using Ambient.Mesh.Config;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Sources.Xds;
using Ambient.Mesh.Tests.ControlPlane;
using Ambient.Mesh.Tests.ControlPlane.Support;
using Ambient.Ztunnel;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Hosting;
using Ambient.Ztunnel.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Tests.Ztunnel;

/// <summary>
/// Agents under an in-process istiod (issue 9): they learn the mesh only over xDS and get their certificates only from
/// the Istio CA at the same address (CA_ADDRESS defaults to XDS_ADDRESS), then carry HBONE traffic between each other.
/// Every address dialed is loopback.
/// </summary>
public sealed class ControlPlaneAgentTests
{
    private static int s_next;

    private static IHost BuildAgent(FakeIstiod istiod, string dir, string node, IPAddress ip, bool onDemand = false, TextWriter? accessLog = null)
    {
        string token = Path.Combine(dir, $"token-{node}");
        File.WriteAllText(token, $"token-of-{node}");
        var host = InProcessAgent.Build(
            new AgentOptions
            {
                NodeName = node,
                // A fresh state dir per agent: no shared built-in CA could make the handshake succeed by accident.
                StateDir = Directory.CreateDirectory(Path.Combine(dir, node)).FullName,
                AccessLogWriter = accessLog ?? TextWriter.Synchronized(new StringWriter()),
                ControlPlane = new ControlPlaneOptions
                {
                    XdsAddress = istiod.Url,
                    CaAddress = istiod.Url,
                    TokenFile = token,
                    ClusterId = "Kubernetes",
                    PodName = $"ztunnel-{node}",
                    PodNamespace = "istio-system",
                    ServiceAccount = "ztunnel",
                    NodeName = node,
                    InstanceIp = ip.ToString(),
                    OnDemand = onDemand,
                },
                ControlPlaneBackoff = new Backoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(200)),
            },
            ip);
        return host;
    }

    /// <summary>Loopback addresses in a subnet of their own per test run (<c>127.x.k.last</c>), one per last octet.</summary>
    private static IPAddress[] Addresses(params int[] lastOctets)
    {
        int k = Interlocked.Increment(ref s_next) % 200 + 1;
        int octet = 62 + Random.Shared.Next(8);
        return [.. lastOctets.Select(last => IPAddress.Parse($"127.{octet}.{k}.{last}"))];
    }

    private static async Task StopAllAsync(List<IHost> hosts, string dir)
    {
        foreach (IHost h in hosts)
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
        Directory.Delete(dir, recursive: true);
    }

    private static Agent AgentOf(IHost host) => host.Services.GetRequiredService<AgentService>().Agent;

    /// <summary>Sends <paramref name="text"/> through the agent's SOCKS5 listener from <paramref name="source"/>; the echo, or null when refused.</summary>
    internal static async Task<string?> EchoAsync(Agent a, IPAddress source, IPEndPoint target, string text)
    {
        var (socket, reply) = await Socks5Client.ConnectAsync(a.EndPoints["socks5"], source, target);
        using (socket)
        {
            if (reply != 0)
            {
                return null;
            }
            await socket.SendAsync(Encoding.ASCII.GetBytes(text));
            socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            byte[] got = await Socks5Client.ReadToEndAsync(socket).WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : []);
            return got.Length == 0 ? null : Encoding.ASCII.GetString(got);
        }
    }

    internal static async Task EventuallyAsync(Func<bool> condition, string what, int timeoutMs = 20_000)
    {
        long deadline = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                Assert.Fail($"timed out waiting for: {what}");
            }
            await Task.Delay(20);
        }
    }

    [Fact]
    public void Flags_override_istios_environment_variables_and_the_ca_follows_the_xds_address()
    {
        var env = new Dictionary<string, string>
        {
            ["XDS_ADDRESS"] = "istiod.istio-system.svc:15012",
            ["POD_NAME"] = "ztunnel-1",
            ["ISTIO_META_CLUSTER_ID"] = "east",
        };
        var fromEnv = Ambient.Ztunnel.Cli.CommandLine.Parse([]).ControlPlane(env)!;
        Assert.Equal(new Uri("https://istiod.istio-system.svc:15012"), fromEnv.CaAddress);
        Assert.Equal("east", fromEnv.ClusterId);

        var cl = Ambient.Ztunnel.Cli.CommandLine.Parse(["--xds-address", "http://127.0.0.1:15010", "--token-file", "/tmp/t", "--cluster-id", "west", "--xds-root-cert", "/tmp/root.pem"]);
        Assert.Null(cl.Error);
        var cp = cl.ControlPlane(env)!;
        Assert.Equal(new Uri("http://127.0.0.1:15010"), cp.XdsAddress);
        Assert.Equal(cp.XdsAddress, cp.CaAddress);
        Assert.Equal(("/tmp/t", "west", "/tmp/root.pem", "/tmp/root.pem"), (cp.TokenFile, cp.ClusterId, cp.XdsRootCert, cp.CaRootCert));
        Assert.Equal("ztunnel-1", cp.PodName);

        Assert.Null(Ambient.Ztunnel.Cli.CommandLine.Parse([]).ControlPlane(new Dictionary<string, string>()));
        Assert.NotNull(Ambient.Ztunnel.Cli.CommandLine.Parse(["--xds-address"]).Error);
        var bad = Assert.Throws<FormatException>(() => Ambient.Ztunnel.Cli.CommandLine.Parse(["--ca-address", "ftp://x"]).ControlPlane(env));
        Assert.Contains("--ca-address", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_agents_fed_by_istio_xds_with_istio_ca_certificates_carry_hbone_traffic()
    {
        IPAddress[] ips = Addresses(10, 20, 100);
        IPAddress client = ips[0], server = ips[1], vip = ips[2];
        string dir = Directory.CreateTempSubdirectory("ambient-cp-").FullName;
        await using var istiod = await FakeIstiod.StartAsync();
        await using var echo = new EchoServer(server);
        var hosts = new List<IHost>();
        try
        {
            istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/client",
                XdsSourceTests.Workload("client", client, node: "node-a", sa: "client"));
            istiod.Set(XdsSource.AddressType, "shop/echo.shop.svc.cluster.local",
                XdsSourceTests.Service("echo", vip, 80, (uint)echo.EndPoint.Port));

            var hostB = BuildAgent(istiod, dir, "node-b", server);
            hosts.Add(hostB);
            var hostA = BuildAgent(istiod, dir, "node-a", client);
            hosts.Add(hostA);
            await hostB.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await hostA.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Agent a = AgentOf(hostA), b = AgentOf(hostB);
            await EventuallyAsync(() => a.Ready && b.Ready, "both agents ready after the first push of each type");

            // The echo pod appears after start-up; the client reaches it through the service VIP over HBONE.
            istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/echo",
                XdsSourceTests.Workload("echo", server, node: "node-b", sa: "echo", ("shop/echo.shop.svc.cluster.local", 80, (uint)echo.EndPoint.Port)));
            await EventuallyAsync(() => a.State.Current.FindWorkloadByIp(server) is not null && b.State.Current.FindWorkloadByIp(server) is not null, "both agents learned echo");
            Assert.Equal("over hbone", await EchoAsync(a, client, new IPEndPoint(vip, 80), "over hbone"));

            // The certificates on both sides came from the Istio CA: SPIFFE SAN, chain to its root, impersonated ids.
            var csrs = istiod.CertificateRequests;
            Assert.Contains(csrs, r => r.Metadata?.Fields["ImpersonatedIdentity"].StringValue == "spiffe://cluster.local/ns/shop/sa/client");
            Assert.Contains(csrs, r => r.Metadata?.Fields["ImpersonatedIdentity"].StringValue == "spiffe://cluster.local/ns/shop/sa/echo");
            Assert.All(csrs, r => Assert.Equal((long)TimeSpan.FromHours(24).TotalSeconds, r.ValidityDuration));
            Assert.Contains(istiod.Calls, c => c.Authorization == "Bearer token-of-node-a");
            Assert.Contains(istiod.Calls, c => c.Authorization == "Bearer token-of-node-b");
            Assert.All(istiod.Calls, c => Assert.Equal("Kubernetes", c.ClusterId));
            Assert.Equal(istiod.Root.Thumbprint, Assert.Single(AgentOf(hostB).Issuer.TrustBundle).Thumbprint);

            // Removal over xDS: the VIP no longer leads anywhere.
            istiod.Remove(XdsSource.AddressType, "shop/echo.shop.svc.cluster.local");
            await EventuallyAsync(() => a.State.Current.FindServiceByVip(vip) is null, "node-a dropped the service");
            Assert.Null(await EchoAsync(a, client, new IPEndPoint(vip, 80), "gone"));
        }
        finally
        {
            await StopAllAsync(hosts, dir);
        }
    }

    [Fact]
    public async Task An_on_demand_agent_asks_for_the_address_of_its_first_connection_and_carries_it()
    {
        IPAddress[] ips = Addresses(11, 21, 31);
        IPAddress client = ips[0], server = ips[1], nowhere = ips[2];
        string dir = Directory.CreateTempSubdirectory("ambient-od-").FullName;
        await using var istiod = await FakeIstiod.StartAsync();
        await using var echo = new EchoServer(server);
        var hosts = new List<IHost>();
        try
        {
            // istiod knows both pods (each also under its network/ip name, as istiod lists it); node-a is told nothing
            // up front, node-b (the server's node) subscribes to everything.
            istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/client",
                XdsSourceTests.Workload("client", client, node: "node-a", sa: "client"), XdsSource.AddressName(client, ""));
            istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/echo",
                XdsSourceTests.Workload("echo", server, node: "node-b", sa: "echo"), XdsSource.AddressName(server, ""));
            var hostB = BuildAgent(istiod, dir, "node-b", server);
            hosts.Add(hostB);
            var logA = new StringWriter();
            var hostA = BuildAgent(istiod, dir, "node-a", client, onDemand: true, TextWriter.Synchronized(logA));
            hosts.Add(hostA);
            await hostB.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await hostA.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Agent a = AgentOf(hostA), b = AgentOf(hostB);
            await EventuallyAsync(() => a.Ready && b.Ready, "both agents ready");
            Assert.Null(a.State.Current.FindWorkloadByIp(server));
            var xdsA = hostA.Services.GetRequiredService<XdsSource>();
            Assert.True(xdsA.OnDemand);

            // The first connection: node-a subscribes to exactly "/<server ip>", gets the pod, and carries HBONE to it.
            var target = new IPEndPoint(server, echo.EndPoint.Port);
            Assert.Equal("on demand", await EchoAsync(a, client, target, "on demand"));
            // Over HBONE to the pod's identity, not passed through as to an unknown address.
            await EventuallyAsync(() => logA.ToString().Contains("spiffe://cluster.local/ns/shop/sa/echo", StringComparison.Ordinal), "node-a's access log names the echo identity");
            string name = XdsSource.AddressName(server, "");
            var subscriptions = istiod.Requests.Select(r => r.Request)
                .Where(r => r.TypeUrl == XdsSource.AddressType && r.Node is null && r.ResponseNonce.Length == 0 && r.ResourceNamesSubscribe.Contains(name)).ToList();
            Assert.Equal([name], Assert.Single(subscriptions).ResourceNamesSubscribe);
            Assert.NotNull(a.State.Current.FindWorkloadByIp(server));

            // Istio's subscription shape: addresses without the wildcard, policies with it; the node as without on-demand.
            var initial = istiod.Requests.Select(r => r.Request)
                .Where(r => r.Node is not null && r.Node.Id.StartsWith("ztunnel~" + client, StringComparison.Ordinal)).ToDictionary(r => r.TypeUrl);
            Assert.Equal(["*"], initial[XdsSource.AddressType].ResourceNamesSubscribe);
            Assert.Equal(["*"], initial[XdsSource.AddressType].ResourceNamesUnsubscribe);
            Assert.Empty(initial[XdsSource.AuthorizationType].ResourceNamesSubscribe);
            Assert.Equal("node-a", initial[XdsSource.AddressType].Node.Metadata.Fields["NODE_NAME"].StringValue);

            // A second connection needs no new question.
            long sent = xdsA.DemandsSent;
            Assert.Equal("again", await EchoAsync(a, client, target, "again"));
            Assert.Equal(sent, xdsA.DemandsSent);

            // An address istiod does not know: asked once, answered "removed", then the same as an unknown destination
            // today (passthrough to an address where nothing listens: the connection fails).
            var unknown = new IPEndPoint(nowhere, echo.EndPoint.Port);
            Assert.Null(await EchoAsync(a, client, unknown, "nobody"));
            Assert.Null(await EchoAsync(a, client, unknown, "nobody"));
            Assert.Single(istiod.Requests, r => r.Request.Node is null && r.Request.ResourceNamesSubscribe.Contains(XdsSource.AddressName(nowhere, "")));
            Assert.Null(a.State.Current.FindWorkloadByIp(nowhere));
        }
        finally
        {
            await StopAllAsync(hosts, dir);
        }
    }
}
