using Ambient.Mesh.Config;
using Ambient.Mesh.Sources;
using Ambient.Ztunnel.Admin;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Hosting;

/// <summary>
/// The proxy itself as a hosted service: starts the <see cref="Agent"/> (identities, listeners, admin ports, the config
/// file's own source) after the mesh sources have loaded, and drains it when the host stops.
/// </summary>
internal sealed class AgentService(
    AgentOptions options,
    MeshConfig config,
    MeshStore store,
    ILoggerFactory loggers,
    LogLevelSwitch logLevel,
    Telemetry.MeshMetrics metrics,
    AgentLifetime lifetime,
    IEnumerable<Mesh.Sources.Xds.XdsSource> xds) : IHostedService, IAsyncDisposable
{
    private Agent? _agent;

    /// <summary>The running agent (after start).</summary>
    public Agent Agent => _agent ?? throw new InvalidOperationException("the agent has not started");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The xDS source (when istiod feeds the store) also answers on-demand address lookups; DI gives none without it.
        _agent = await Agent.StartAsync(options, config, loggers, logLevel, store, metrics, xds.FirstOrDefault()).ConfigureAwait(false);
        // POST /quitquitquit stops the host like a signal does, so every hosted service stops in order.
        _ = _agent.ShutdownRequested.ContinueWith(
            t => lifetime.RequestStop(t.Result),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_agent is not null)
        {
            await _agent.StopAsync(lifetime.StopReason).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_agent is not null)
        {
            await _agent.DisposeAsync().ConfigureAwait(false);
        }
    }
}
