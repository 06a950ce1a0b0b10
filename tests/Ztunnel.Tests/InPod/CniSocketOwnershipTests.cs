using System.Net;
using System.Net.Sockets;
using System.Text;
using Ambient.Mesh.Config;
using Ambient.Ztunnel.Admin;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// Issue 13, finding 8: when a newer agent has taken over the CNI socket path (same state directory, same socket),
/// the older one must not delete it as it drains: pods added afterwards would fail closed although an agent runs.
/// No network namespace is needed: no pod is captured, only the socket changes hands.
/// </summary>
public sealed class CniSocketOwnershipTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ambient-cni-owner-").FullName;

    private string Socket => Path.Combine(_dir, "cni.sock");

    private Task<Agent> StartAsync()
    {
        var ip = IPAddress.Loopback;
        var config = new MeshConfig
        {
            Mode = AgentMode.InPod,
            InPod = new InPodConfig { CniSocket = Socket, EnrollmentFile = Path.Combine(_dir, "enrollment.json") },
            Listeners = new ListenerConfig
            {
                Socks5 = new IPEndPoint(ip, 0),
                Admin = new IPEndPoint(ip, 0),
                Metrics = new IPEndPoint(ip, 0),
                Readiness = new IPEndPoint(ip, 0),
            },
            DrainTimeout = TimeSpan.FromSeconds(1),
        };
        return Agent.StartAsync(
            new AgentOptions { StateDir = Path.Combine(_dir, "state"), AccessLogWriter = TextWriter.Null },
            config,
            NullLoggerFactory.Instance,
            new LogLevelSwitch(LogLevel.Information));
    }

    [Fact]
    public async Task A_draining_agent_leaves_the_socket_a_newer_agent_now_serves()
    {
        var old = await StartAsync();
        bool oldGone = false;
        try
        {
            Assert.Contains("\"ready\"", await StatusAsync(), StringComparison.OrdinalIgnoreCase);
            await using var successor = await StartAsync(); // replaces the socket file with its own

            await old.StopAsync("SIGTERM"); // the same path SIGTERM takes
            await old.DisposeAsync();
            oldGone = true;

            Assert.True(File.Exists(Socket), "the draining agent deleted the socket its successor serves");
            Assert.Contains("\"ready\"", await StatusAsync(), StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            if (!oldGone)
            {
                await old.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task An_agent_that_still_owns_the_socket_removes_it_when_it_stops()
    {
        var agent = await StartAsync();
        await agent.StopAsync("SIGTERM");
        await agent.DisposeAsync();
        Assert.False(File.Exists(Socket));
    }

    /// <summary>What the plugin's STATUS asks (cni-plugin/PROTOCOL.md): one JSON line each way.</summary>
    private async Task<string> StatusAsync()
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket)).WaitAsync(TimeSpan.FromSeconds(10));
        await s.SendAsync("{\"version\":1,\"command\":\"STATUS\"}\n"u8.ToArray(), SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(10));
        var buf = new byte[4096];
        int n = await s.ReceiveAsync(buf.AsMemory(), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        return Encoding.UTF8.GetString(buf, 0, n);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
