using System.Net;
using Ambient.Mesh.Sources.Mcp;
using Ambient.Mesh.Tests.ControlPlane;
using Ambient.Mesh.Tests.ControlPlane.Support;
using Ambient.Ztunnel;
using Ambient.Ztunnel.Hosting;
using Ambient.Ztunnel.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pn = Ambient.Mesh.Protos.Istio.Networking;

namespace Ambient.Mesh.Tests.Ztunnel;

/// <summary>
/// An agent whose only mesh source is two MCP registries (issue 9, "only --mcp-address set"): it carries real traffic
/// on loopback from a pod registry "west" knows to services of both registries, takes a host both publish from the
/// one with the higher precedence and says so (/config_dump, metrics), and withdraws a vanished registry's objects
/// after its staleAfter while the other's keep working.
/// </summary>
public sealed class McpAgentTests
{
    private static int s_next;

    private static Pn.ServiceEntry PlainEntry(string host, IPAddress vip, uint target, IPAddress endpoint)
    {
        // No HBONE label: the endpoints are plain TCP servers of this test, not pods behind another ztunnel.
        var se = McpSourceTests.Entry(host, vip, target, endpoint);
        se.Endpoints[0].Labels.Clear();
        return se;
    }

    [Fact]
    public async Task An_agent_fed_only_by_two_mcp_registries_carries_traffic_resolves_a_conflict_and_withdraws_a_vanished_registry()
    {
        int k = Interlocked.Increment(ref s_next) % 200 + 1;
        int octet = 70 + Random.Shared.Next(8);
        IPAddress Ip(int last) => IPAddress.Parse($"127.{octet}.{k}.{last}");
        IPAddress client = Ip(10);
        await using var echoEast = new EchoServer(Ip(20));
        await using var echoWest = new EchoServer(Ip(21));
        await using var echoShared = new EchoServer(Ip(22));
        int deadPort;
        using (var probe = new System.Net.Sockets.TcpListener(Ip(22), 0))
        {
            probe.Start();
            deadPort = ((IPEndPoint)probe.LocalEndpoint).Port; // nothing listens there once the probe is closed
        }
        var east = await FakeMcpServer.StartAsync();
        await using var west = await FakeMcpServer.StartAsync();
        string dir = Directory.CreateTempSubdirectory("ambient-mcp-").FullName;
        IHost? host = null;
        try
        {
            west.Set(McpSourceTests.WorkloadEntryType, "shop/client", new Pn.WorkloadEntry { Address = client.ToString(), ServiceAccount = "client" });
            east.Set(McpSourceTests.ServiceEntryType, "shop/echo-east", PlainEntry("echo-east.shop.registry", Ip(100), (uint)echoEast.EndPoint.Port, Ip(20)));
            west.Set(McpSourceTests.ServiceEntryType, "shop/echo-west", PlainEntry("echo-west.shop.registry", Ip(101), (uint)echoWest.EndPoint.Port, Ip(21)));
            // Both registries publish shop/shared (same host, VIP and endpoint), with different target ports: east's leads
            // nowhere. West's precedence is higher, so its entry (service and endpoint workload) is the one used.
            east.Set(McpSourceTests.ServiceEntryType, "shop/shared", PlainEntry("shared.shop.registry", Ip(102), (uint)deadPort, Ip(22)));
            west.Set(McpSourceTests.ServiceEntryType, "shop/shared", PlainEntry("shared.shop.registry", Ip(102), (uint)echoShared.EndPoint.Port, Ip(22)));

            var cl = Ambient.Ztunnel.Cli.CommandLine.Parse([
                "--mcp-address", $"name=east,url={east.Url},precedence=20,staleAfter=1s",
                "--mcp-address", $"name=west,url={west.Url},precedence=30",
            ]);
            Assert.Null(cl.Error);
            host = await InProcessAgent.StartAsync(
                new AgentOptions
                {
                    StateDir = dir,
                    AccessLogWriter = TextWriter.Synchronized(new StringWriter()),
                    Mcp = cl.McpRegistries([]),
                    ControlPlaneBackoff = new Mesh.ControlPlane.Backoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(200)),
                },
                client);
            Agent a = host.Services.GetRequiredService<AgentService>().Agent;
            await ControlPlaneAgentTests.EventuallyAsync(() => a.Ready, "the agent ready after both registries' first snapshots");
            Assert.Equal(2, host.Services.GetServices<IHostedService>().OfType<McpSource>().Count());

            // Real traffic to a service of each registry.
            Assert.Equal("to east", await ControlPlaneAgentTests.EchoAsync(a, client, new IPEndPoint(Ip(100), 80), "to east"));
            Assert.Equal(1, echoEast.Accepted);
            Assert.Equal("to west", await ControlPlaneAgentTests.EchoAsync(a, client, new IPEndPoint(Ip(101), 80), "to west"));
            Assert.Equal(1, echoWest.Accepted);

            // The shared host: west's entry (precedence 30) carries the connection; the conflict is reported.
            Assert.Equal("shared", await ControlPlaneAgentTests.EchoAsync(a, client, new IPEndPoint(Ip(102), 80), "shared"));
            Assert.Equal(1, echoShared.Accepted);
            using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
            {
                string dump = await http.GetStringAsync(new Uri($"http://{a.EndPoints["admin"]}/config_dump"));
                Assert.Contains("service shop/shared.shop.registry: shadowed by mcp:west (precedence 30)", dump, StringComparison.Ordinal);
            }
            string metrics = a.Metrics.Render();
            Assert.Contains("ambient_mesh_source_shadowed{source=\"mcp:east\"} 2", metrics, StringComparison.Ordinal); // the service and its endpoint workload
            Assert.Contains("ambient_mesh_source_shadowed{source=\"mcp:west\"} 0", metrics, StringComparison.Ordinal);

            // East goes away: after its staleAfter (1 s) its objects leave the mesh; west's keep carrying traffic.
            await east.DisposeAsync();
            await ControlPlaneAgentTests.EventuallyAsync(() => a.State.Current.FindServiceByVip(Ip(100)) is null, "east's service withdrawn after staleAfter");
            Assert.Null(a.State.Current.FindWorkloadByIp(Ip(20)));
            Assert.NotNull(a.State.Current.FindWorkloadByIp(client));
            Assert.NotNull(a.State.Current.FindServiceByVip(Ip(101)));
            Assert.Equal("still west", await ControlPlaneAgentTests.EchoAsync(a, client, new IPEndPoint(Ip(101), 80), "still west"));
            Assert.True(a.Ready);
        }
        finally
        {
            if (host is not null)
            {
                await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));
                host.Dispose();
            }
            await east.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }
}
