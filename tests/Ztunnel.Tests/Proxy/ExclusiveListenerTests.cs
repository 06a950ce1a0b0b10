using System.Net;
using Ambient.Mesh.Config;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Ztunnel.Tests.Proxy;

/// <summary>
/// Issue 13, finding 1: a second agent on the addresses of a running one must fail to start with a clear message,
/// never share the ports (.NET's ReuseAddress turns on SO_REUSEPORT on Linux, and the kernel then splits connections
/// between the two agents).
/// </summary>
public sealed class ExclusiveListenerTests
{
    public static TheoryData<string> Names => ["outbound", "inbound", "hbone", "socks5", "admin", "metrics", "readiness"];

    [Theory]
    [MemberData(nameof(Names))]
    public async Task A_second_agent_on_the_address_of_a_running_one_fails_with_another_ztunnel_running(string name)
    {
        var ip = IPAddress.Parse($"127.{Random.Shared.Next(100, 200)}.{Random.Shared.Next(1, 250)}.{Random.Shared.Next(2, 250)}");
        string state = Directory.CreateTempSubdirectory("ztunnel-exclusive-").FullName;
        try
        {
            var first = await StartAsync(Listeners(ip), state);
            await using (first)
            {
                // Everything on free ports except the one listener under test, which takes the first agent's address.
                var taken = first.EndPoints[name];
                var clash = Listeners(ip, name, taken);
                var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => StartAsync(clash, state));
                Assert.Contains($"cannot listen on {taken} for {name}", ex.Message, StringComparison.Ordinal);
                Assert.Contains("another ztunnel running?", ex.Message, StringComparison.Ordinal);

                // The first agent still owns the port alone: its readiness answers.
                var (status, _) = await TwoNodeMesh.GetAsync(first.EndPoints["readiness"], "/healthz/ready");
                Assert.Equal(200, status);
            }
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    private static Task<Agent> StartAsync(ListenerConfig listeners, string state) =>
        Agent.StartAsync(
            new AgentOptions { StateDir = state, AccessLogWriter = TextWriter.Null },
            new MeshConfig { Listeners = listeners, DrainTimeout = TimeSpan.FromSeconds(1) },
            NullLoggerFactory.Instance,
            new LogLevelSwitch(LogLevel.Information));

    private static ListenerConfig Listeners(IPAddress ip, string? name = null, IPEndPoint? at = null)
    {
        IPEndPoint Pick(string n) => n == name ? at! : new IPEndPoint(ip, 0);
        return new ListenerConfig
        {
            Outbound = Pick("outbound"),
            Inbound = Pick("inbound"),
            Hbone = Pick("hbone"),
            Socks5 = Pick("socks5"),
            Admin = Pick("admin"),
            Metrics = Pick("metrics"),
            Readiness = Pick("readiness"),
        };
    }
}
