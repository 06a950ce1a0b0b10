using System.Net;
using Ambient.Mesh.Config;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Tests.Support;

/// <summary>
/// The agent composed as ztunnel's Program does (<see cref="AgentHost"/>), in the test process, listening on one
/// address: HBONE on 15008, every other listener on an ephemeral port, a 2 s drain, no console logging. Shared by the
/// in-process agent tests of Ztunnel.Tests, Mesh.Tests and Waypoint.Tests (linked there).
/// </summary>
internal static class InProcessAgent
{
    public static IHost Build(AgentOptions options, IPAddress ip) => AgentHost.Build(
        options,
        WithListeners(new MeshConfig(), ip),
        new LogLevelSwitch(LogLevel.Information),
        logging: _ => { });

    /// <summary><paramref name="config"/> listening on <paramref name="ip"/>: HBONE on 15008, the rest ephemeral, a 2 s drain.</summary>
    public static MeshConfig WithListeners(MeshConfig config, IPAddress ip) => config with
    {
        Listeners = new ListenerConfig
        {
            Outbound = new IPEndPoint(ip, 0),
            Inbound = new IPEndPoint(ip, 0),
            Hbone = new IPEndPoint(ip, 15008),
            Socks5 = new IPEndPoint(ip, 0),
            Admin = new IPEndPoint(ip, 0),
            Metrics = new IPEndPoint(ip, 0),
            Readiness = new IPEndPoint(ip, 0),
        },
        DrainTimeout = TimeSpan.FromSeconds(2),
    };

    /// <summary>Builds and starts the agent; a start that fails or times out disposes it before throwing.</summary>
    public static async Task<IHost> StartAsync(AgentOptions options, IPAddress ip)
    {
        var host = Build(options, ip);
        try
        {
            await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            host.Dispose();
            throw;
        }
        return host;
    }
}
