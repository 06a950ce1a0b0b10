using Ambient.Mesh.Governance;
using Ambient.Waypoint.Routing;

namespace Ambient.Waypoint.Governance;

/// <summary>
/// What <see cref="RetryingHandler"/> needs to know about one forwarded request (carried in the outgoing request's
/// options) and what it reports back: the endpoint of each attempt, how the last one ended, the response flags.
/// </summary>
internal sealed class AttemptPlan
{
    public static readonly HttpRequestOptionsKey<AttemptPlan> Key = new("ambient.attempts");

    /// <summary>Request bodies up to this size are kept so that a retry can send them again; larger ones are not retried.</summary>
    public const int MaxBufferedBody = 64 * 1024;

    private PickedEndpoint? _held;

    public AttemptPlan(RetryPolicy retry, PickedEndpoint first, Func<IReadOnlySet<string>, PickedEndpoint?> pickAnother)
    {
        Retry = retry;
        _held = first;
        Current = first;
        PickAnother = pickAnother;
    }

    public RetryPolicy Retry { get; }

    /// <summary>Picks the endpoint of a retry, avoiding the workload uids given when another one is left.</summary>
    public Func<IReadOnlySet<string>, PickedEndpoint?> PickAnother { get; }

    public DestinationGovernance? Destination { get; init; }

    /// <summary>The request body kept for retries (null: none, or not kept).</summary>
    public byte[]? Body { get; init; }

    /// <summary>False when the body was too large (or of unknown length) to keep: the request is tried once.</summary>
    public bool CanResend { get; init; } = true;

    /// <summary>
    /// A body without a declared length (chunked, HTTP/2 without content-length: gRPC), kept while it streams; a retry
    /// replays it unless it outgrew <see cref="MaxBufferedBody"/>. Null when <see cref="Body"/> holds the body.
    /// </summary>
    public Proxy.ReplayableBody? Replay { get; init; }

    /// <summary>The endpoint of the latest attempt.</summary>
    public PickedEndpoint Current { get; set; }

    /// <summary>Retries made.</summary>
    public int Retries { get; set; }

    /// <summary>The latest attempt hit its per-try timeout.</summary>
    public bool TimedOut { get; set; }

    /// <summary>Retryable failures remained when attempts (or the retry budget) ran out: Envoy's URX.</summary>
    public bool Exhausted { get; set; }

    /// <summary>Why the last attempt failed, for the access log.</summary>
    public string? Detail { get; set; }

    /// <summary>Marks <paramref name="endpoint"/> as the one in use, releasing the previous one's load count.</summary>
    public void Use(PickedEndpoint endpoint)
    {
        Release();
        _held = endpoint;
        Current = endpoint;
    }

    /// <summary>Gives back the in-flight count of the endpoint in use (idempotent).</summary>
    public void Release()
    {
        if (_held is { } e)
        {
            _held = null;
            e.Load?.Release();
        }
    }
}
