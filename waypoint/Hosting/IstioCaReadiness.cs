using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Sources;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Hosting;

/// <summary>
/// With Istio's CA, the waypoint asks for its certificate at start-up instead of at the first tunnel, and is not ready
/// until it holds one: a pod that cannot complete a handshake must not receive traffic. The CA appears as a mesh
/// source of its own (it contributes no resources), so the one readiness rule (every source synced) and
/// <c>/config_dump</c>'s source list cover it, with the last error while the CA refuses. Later renewals are the
/// <see cref="CertificateManager"/>'s (half-life; a failure keeps the valid certificate and backs off).
/// </summary>
internal sealed class IstioCaReadiness(
    Uri address, SpiffeId id, CertificateManager certificates, MeshStore store, Backoff backoff, ILogger logger) : BackgroundService
{
    private MeshSource? _source;

    /// <summary>Registers the source before any readiness probe can run (ExecuteAsync starts on another thread).</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _source = store.AddSource($"istio-ca:{address}", precedence: 0);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        MeshSource source = _source!;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                await certificates.GetAsync(id, timeout.Token).ConfigureAwait(false);
                source.ReportSuccess();
                source.MarkSynced();
                return;
            }
            catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException && !stoppingToken.IsCancellationRequested)
            {
                TimeSpan delay = backoff.Delay(attempt);
                // The node agent opens its in-pod endpoint once it knows this pod and its Gateway: until then, say what is awaited.
                string error = Cli.CommandLine.IsNodeLocalCa(address)
                    ? $"{ex.Message} (waiting for the node agent to open its CA endpoint in this pod: it does once it knows the pod, labelled with its waypoint Gateway, and only with its built-in CA)"
                    : ex.Message;
                source.ReportError($"no certificate for {id} yet: {error}");
                WaypointLog.FirstCertificateFailed(logger, id.ToString(), attempt, delay, error);
                await Task.Delay(delay, stoppingToken).ConfigureAwait(false);
            }
        }
    }
}
