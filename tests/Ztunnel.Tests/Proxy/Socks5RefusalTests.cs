using System.Net;
using System.Net.Sockets;
using System.Text;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Tests.Support;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Tests.Proxy;

/// <summary>
/// Issue 13, findings 3 and 6: SOCKS5 never reaches the agent itself (its admin API above all), and a name it cannot
/// resolve is refused and counted as such, not as a bad handshake.
/// </summary>
public sealed class Socks5RefusalTests
{
    [Fact]
    public async Task Connect_to_the_admin_port_is_refused_and_quitquitquit_is_unreachable_through_socks5()
    {
        var logs = new LogCapture();
        await using var mesh = await TwoNodeMesh.StartAsync(loggers: logs);
        var admin = mesh.NodeA.EndPoints["admin"];

        var (socket, reply) = await mesh.ConnectAsync(admin);
        using (socket)
        {
            Assert.Equal(2, reply); // connection not allowed by ruleset
            // Whatever the client sends now goes nowhere: the agent closed the connection after its reply.
            try
            {
                await socket.SendAsync(Encoding.ASCII.GetBytes("POST /quitquitquit HTTP/1.1\r\nHost: x\r\n\r\n"), SocketFlags.None);
                Assert.Empty(await Socks5Client.ReadToEndAsync(socket));
            }
            catch (SocketException)
            {
                // Reset: just as unreachable.
            }
        }

        Assert.False(mesh.NodeA.ShutdownRequested.IsCompleted, "the agent was asked to shut down through SOCKS5");
        Assert.Equal(200, (await TwoNodeMesh.GetAsync(mesh.NodeA.EndPoints["readiness"], "/healthz/ready")).Status);
        Assert.Equal(1, mesh.NodeA.Metrics.RefusalCount("socks5", "loop"));
        Assert.Contains(logs.Lines, l => l.Contains($"destination {admin} is the agent itself", StringComparison.Ordinal));
        Assert.Equal(0, mesh.Echo.Accepted);
    }

    public static TheoryData<string> OwnListeners => ["outbound", "inbound", "hbone", "socks5", "metrics", "readiness"];

    [Theory]
    [MemberData(nameof(OwnListeners))]
    public async Task Connect_to_any_other_listener_of_the_agent_is_refused(string name)
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        var (socket, reply) = await mesh.ConnectAsync(mesh.NodeA.EndPoints[name]);
        socket.Dispose();
        Assert.Equal(2, reply);
        Assert.Equal(1, mesh.NodeA.Metrics.RefusalCount("socks5", "loop"));
    }

    /// <summary>A listener on 0.0.0.0 accepts on every local address: each of them is the agent itself.</summary>
    [Fact]
    public async Task A_wildcard_listener_is_refused_on_any_local_address()
    {
        var client = IPAddress.Parse($"127.{Random.Shared.Next(100, 200)}.{Random.Shared.Next(1, 250)}.10");
        string state = Directory.CreateTempSubdirectory("ztunnel-socks-self-").FullName;
        try
        {
            var config = InProcessAgent.WithListeners(new MeshConfig
            {
                Workloads = [new Workload { Uid = "t//v1/Pod/default/client", Name = "client", Namespace = "default", WorkloadIps = [client], Protocol = InboundProtocol.Hbone }],
            }, client);
            // Metrics on every address, as the default 0.0.0.0:15020.
            config = config with { Listeners = config.Listeners with { Metrics = new IPEndPoint(IPAddress.Any, 0) } };
            await using var agent = await Agent.StartAsync(
                new AgentOptions { StateDir = state, AccessLogWriter = TextWriter.Null },
                config,
                Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
                new LogLevelSwitch(LogLevel.Information));
            int port = agent.EndPoints["metrics"].Port;
            foreach (var address in new[] { IPAddress.Loopback, client, IPAddress.Parse("127.254.1.2") })
            {
                var (socket, reply) = await Socks5Client.ConnectAsync(agent.EndPoints["socks5"], client, new IPEndPoint(address, port));
                socket.Dispose();
                Assert.True(reply == 2, $"SOCKS5 to {address}:{port} (metrics on 0.0.0.0:{port}) answered {reply}");
            }
            Assert.Equal(3, agent.Metrics.RefusalCount("socks5", "loop"));
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task A_name_that_does_not_resolve_is_counted_as_dns_not_as_a_bad_handshake()
    {
        // The resolver fails as the system's does for an unknown name, without asking a DNS server off this machine.
        await using var mesh = await TwoNodeMesh.StartAsync(options: o => o with
        {
            ResolveHost = (_, _) => Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound)),
        });
        var (socket, reply) = await Socks5Client.ConnectAsync(mesh.NodeA.EndPoints["socks5"], mesh.ClientIp, "nowhere.example", 80);
        socket.Dispose();
        Assert.Equal(4, reply); // host unreachable
        Assert.Equal(1, mesh.NodeA.Metrics.RefusalCount("socks5", "dns"));
        Assert.Equal(0, mesh.NodeA.Metrics.RefusalCount("socks5", "bad_handshake"));

        // A mesh service hostname still resolves to its VIP, without DNS.
        var (ok, okReply) = await Socks5Client.ConnectAsync(mesh.NodeA.EndPoints["socks5"], mesh.ClientIp, TwoNodeMesh.ServiceHostname, TwoNodeMesh.ServicePort);
        ok.Dispose();
        Assert.Equal(0, okReply);
    }
}
