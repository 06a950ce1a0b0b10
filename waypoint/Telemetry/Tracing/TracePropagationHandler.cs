namespace Ambient.Waypoint.Telemetry.Tracing;

/// <summary>
/// Sits under the retries, so each attempt of a sampled request carries the client span's context upstream (see
/// <see cref="WaypointTracing.Inject"/>). An unsampled request has no span: its context was written once by the
/// transformer (<see cref="WaypointTracing.InjectUnsampled"/>); with tracing off the caller's headers go through as they came.
/// </summary>
internal sealed class TracePropagationHandler(WaypointTracing tracing) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        tracing.Inject(request);
        return base.SendAsync(request, cancellationToken);
    }
}
