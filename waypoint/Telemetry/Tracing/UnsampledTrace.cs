using System.Diagnostics;

namespace Ambient.Waypoint.Telemetry.Tracing;

/// <summary>
/// What an unsampled request carries upstream instead of a span (a request feature, see
/// <see cref="WaypointTracing.InjectUnsampled"/>): its trace id (the caller's, or the one drawn here), a span id of
/// its own for the hop through the waypoint, the caller's <c>tracestate</c>, and which B3 forms the caller used.
/// </summary>
internal sealed class UnsampledTrace(ActivityTraceId traceId, string? traceState, bool b3Single, bool b3Multi)
{
    public ActivityTraceId TraceId { get; } = traceId;

    public ActivitySpanId SpanId { get; } = ActivitySpanId.CreateRandom();

    public string? TraceState { get; } = traceState;

    public bool B3Single { get; } = b3Single;

    public bool B3Multi { get; } = b3Multi;
}
