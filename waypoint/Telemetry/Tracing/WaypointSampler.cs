using System.Buffers.Binary;
using System.Diagnostics;
using OpenTelemetry.Trace;

namespace Ambient.Waypoint.Telemetry.Tracing;

/// <summary>
/// Parent-based sampling as Envoy does it for Istio: a request that arrives with a trace context keeps the caller's
/// sampled flag; a trace that starts here is sampled with the percentage <paramref name="rootPercentage"/> gives at that
/// moment (the Telemetry resource in force, else <c>OTEL_TRACES_SAMPLER</c>, else 1%). The decision for a new trace is
/// a function of its trace id, so every replica decides a trace the same way.
/// </summary>
/// <remarks>
/// OpenTelemetry's listener sees every activity of the source name in the process, and a process may host several
/// waypoints (the tests do): a span is decided only by the sampler of the waypoint that made it, recognised by the
/// <c>node_id</c> given at creation; for others this sampler returns Drop, which leaves the owner's decision standing.
/// </remarks>
internal sealed class WaypointSampler(string nodeId, Func<(double Percentage, bool IgnoreParent)> rootPercentage) : Sampler
{
    public const string NodeIdTag = "node_id";

    private static readonly SamplingResult Sample = new(SamplingDecision.RecordAndSample);
    private static readonly SamplingResult Drop = new(SamplingDecision.Drop);

    public override SamplingResult ShouldSample(in SamplingParameters samplingParameters)
    {
        if (!IsMine(samplingParameters.Tags))
        {
            return Drop;
        }
        var (percentage, ignoreParent) = rootPercentage();
        return Decide(samplingParameters.ParentContext, samplingParameters.TraceId, percentage, ignoreParent) ? Sample : Drop;
    }

    /// <summary>
    /// The decision itself, shared with <see cref="WaypointTracing.StartServer"/>, which takes it before any span exists
    /// so that an unsampled request makes none: the parent's sampled flag, else the trace id against the percentage.
    /// </summary>
    internal static bool Decide(in ActivityContext parent, ActivityTraceId traceId, double percentage, bool ignoreParent)
    {
        if (ParentDecides(parent, ignoreParent))
        {
            return (parent.TraceFlags & ActivityTraceFlags.Recorded) != 0;
        }
        return IsSampled(traceId, percentage);
    }

    /// <summary>Whether the caller's context, not the percentage, decides (a parent that is not overridden).</summary>
    internal static bool ParentDecides(in ActivityContext parent, bool ignoreParent) =>
        parent.TraceId != default && (!ignoreParent || !parent.IsRemote);

    /// <summary>
    /// Envoy's sampling by request id (<c>useRequestIdForTraceSampling</c>): the first 8 hex digits of the
    /// <c>x-request-id</c> UUID as a number, modulo 10,000, against the percentage in hundredths of a percent. Null when
    /// the request id does not start with 8 hex digits (then the trace id decides).
    /// </summary>
    internal static bool? IsSampledByRequestId(ReadOnlySpan<char> requestId, double percentage)
    {
        if (requestId.Length < 8 || !uint.TryParse(requestId[..8], System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out uint value))
        {
            return null;
        }
        return value % 10_000 < (uint)Math.Round(Math.Clamp(percentage, 0, 100) * 100);
    }

    /// <summary>Whether a trace id falls in the sampled share: its low 8 bytes against the percentage of 2^64.</summary>
    internal static bool IsSampled(ActivityTraceId traceId, double percentage)
    {
        if (percentage >= 100)
        {
            return true;
        }
        if (percentage <= 0 || double.IsNaN(percentage))
        {
            return false;
        }
        Span<byte> bytes = stackalloc byte[16];
        traceId.CopyTo(bytes);
        ulong value = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        return value < (ulong)(percentage / 100 * ulong.MaxValue);
    }

    private bool IsMine(IEnumerable<KeyValuePair<string, object?>>? tags)
    {
        if (tags is null)
        {
            return false;
        }
        foreach (var (key, value) in tags)
        {
            if (key == NodeIdTag)
            {
                return value is string s && s == nodeId;
            }
        }
        return false;
    }
}
