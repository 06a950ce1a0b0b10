using System.Collections.Immutable;
using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Governance;

/// <summary>How one attempt ended, in the terms Envoy's retry_on conditions use.</summary>
public enum AttemptEnd
{
    /// <summary>Response headers arrived: <see cref="AttemptOutcome.Status"/> (and gRPC status) decide.</summary>
    Response,

    /// <summary>No connection to the upstream (refused, unreachable, connect timeout).</summary>
    ConnectFailure,

    /// <summary>The upstream reset or closed before response headers (or the per-try timeout expired).</summary>
    Reset,

    /// <summary>The HTTP/2 stream was refused (REFUSED_STREAM): the upstream did not process it.</summary>
    RefusedStream,
}

public readonly record struct AttemptOutcome(AttemptEnd End, int Status = 0, int? GrpcStatus = null)
{
    public static AttemptOutcome Response(int status, int? grpcStatus = null) => new(AttemptEnd.Response, status, grpcStatus);
}

/// <summary>Envoy's retry_on conditions (x-envoy-retry-on / x-envoy-retry-grpc-on names).</summary>
[Flags]
public enum RetryOn
{
    None = 0,
    FiveXx = 1 << 0,
    GatewayError = 1 << 1,
    Reset = 1 << 2,
    ConnectFailure = 1 << 3,
    Retriable4xx = 1 << 4,
    RefusedStream = 1 << 5,
    RetriableStatusCodes = 1 << 6,
    GrpcCancelled = 1 << 7,
    GrpcDeadlineExceeded = 1 << 8,
    GrpcInternal = 1 << 9,
    GrpcResourceExhausted = 1 << 10,
    GrpcUnavailable = 1 << 11,
}

/// <summary>
/// A route's retry policy with Envoy's meaning: up to <see cref="Attempts"/> retries after the first try, each when
/// the attempt's end matches a retry_on condition; fully jittered exponential back-off (retry n waits a random time
/// in [0, base x (2^n - 1)], capped at 10 x base); a new host for each retry when there is one.
/// </summary>
public sealed record RetryPolicy
{
    private static readonly ImmutableDictionary<string, RetryOn> Names = new Dictionary<string, RetryOn>
    {
        ["5xx"] = RetryOn.FiveXx,
        ["gateway-error"] = RetryOn.GatewayError,
        ["reset"] = RetryOn.Reset,
        ["connect-failure"] = RetryOn.ConnectFailure,
        ["retriable-4xx"] = RetryOn.Retriable4xx,
        ["refused-stream"] = RetryOn.RefusedStream,
        ["retriable-status-codes"] = RetryOn.RetriableStatusCodes,
        ["cancelled"] = RetryOn.GrpcCancelled,
        ["deadline-exceeded"] = RetryOn.GrpcDeadlineExceeded,
        ["internal"] = RetryOn.GrpcInternal,
        ["resource-exhausted"] = RetryOn.GrpcResourceExhausted,
        ["unavailable"] = RetryOn.GrpcUnavailable,
    }.ToImmutableDictionary(StringComparer.Ordinal);

    /// <summary>No retries (what a route with <c>attempts: 0</c> means).</summary>
    public static readonly RetryPolicy None = new() { Attempts = 0 };

    /// <summary>Retries after the first attempt.</summary>
    public int Attempts { get; init; }

    public RetryOn On { get; init; }

    /// <summary>Statuses retried under <see cref="RetryOn.RetriableStatusCodes"/>.</summary>
    public ImmutableHashSet<int> StatusCodes { get; init; } = [];

    /// <summary>Null: the route's timeout bounds every attempt together.</summary>
    public TimeSpan? PerTryTimeout { get; init; }

    public TimeSpan BaseInterval { get; init; } = TimeSpan.FromMilliseconds(25);

    /// <summary>Envoy's default cap: ten times the base interval.</summary>
    public TimeSpan MaxInterval => BaseInterval * 10;

    /// <summary>Retry on a host other than those already tried, when one is left.</summary>
    public bool OtherHost { get; init; } = true;

    /// <summary>Parses Envoy's condition names and bare status codes (as Istio accepts in <c>retryOn</c>).</summary>
    /// <returns>The conditions, or null with <paramref name="error"/> naming the first unknown entry.</returns>
    public static (RetryOn On, ImmutableHashSet<int> Codes)? ParseConditions(IEnumerable<string> entries, out string? error)
    {
        RetryOn on = RetryOn.None;
        ImmutableHashSet<int>.Builder codes = ImmutableHashSet.CreateBuilder<int>();
        foreach (string raw in entries)
        {
            string entry = raw.Trim();
            if (entry.Length == 0)
            {
                continue;
            }

            if (Names.TryGetValue(entry, out RetryOn flag))
            {
                on |= flag;
            }
            else if (int.TryParse(entry, out int code) && code is >= 100 and <= 599)
            {
                codes.Add(code);
                on |= RetryOn.RetriableStatusCodes;
            }
            else
            {
                error = $"unknown retryOn condition '{entry}' (expected an Envoy retry_on name such as 5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable, or an HTTP status code)";
                return null;
            }
        }

        error = null;
        return (on, codes.ToImmutable());
    }

    /// <summary>Istio VirtualService <c>retries</c>.</summary>
    public static RetryPolicy From(HttpRetry retry)
    {
        if (retry.Attempts <= 0)
        {
            return None;
        }

        // The parser validated the names; an unknown one here would be a bug, so it retries on nothing extra.
        (RetryOn on, ImmutableHashSet<int> codes) = ParseConditions(retry.EffectiveRetryOn, out _) ?? (RetryOn.None, []);
        return new RetryPolicy
        {
            Attempts = retry.Attempts,
            On = on,
            StatusCodes = codes,
            PerTryTimeout = retry.PerTryTimeout,
            BaseInterval = retry.EffectiveBackoff,
            OtherHost = retry.RetryIgnorePreviousHosts ?? true,
        };
    }

    /// <summary>Gateway API HTTPRoute <c>retry</c>: Istio's default conditions plus the listed codes.</summary>
    public static RetryPolicy From(HttpRouteRetry retry)
    {
        if (retry.EffectiveAttempts <= 0)
        {
            return None;
        }

        (RetryOn on, ImmutableHashSet<int> codes) = ParseConditions(HttpRouteRetry.DefaultRetryOn.Split(','), out _) ?? (RetryOn.None, []);
        if (!retry.Codes.IsEmpty)
        {
            on |= RetryOn.RetriableStatusCodes;
            codes = codes.Union(retry.Codes);
        }

        return new RetryPolicy
        {
            Attempts = retry.EffectiveAttempts,
            On = on,
            StatusCodes = codes,
            BaseInterval = retry.Backoff ?? TimeSpan.FromMilliseconds(25),
        };
    }

    /// <summary>Whether an attempt that ended so matches a retry condition (attempt counting is the caller's).</summary>
    public bool Matches(AttemptOutcome outcome)
    {
        switch (outcome.End)
        {
            case AttemptEnd.ConnectFailure:
                return (On & (RetryOn.ConnectFailure | RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset)) != 0;
            case AttemptEnd.Reset:
                return (On & (RetryOn.Reset | RetryOn.FiveXx | RetryOn.GatewayError)) != 0;
            case AttemptEnd.RefusedStream:
                return (On & (RetryOn.RefusedStream | RetryOn.FiveXx)) != 0;
        }

        int status = outcome.Status;
        if (status >= 500 && (On & RetryOn.FiveXx) != 0)
        {
            return true;
        }

        if (status is 502 or 503 or 504 && (On & RetryOn.GatewayError) != 0)
        {
            return true;
        }

        if (status == 409 && (On & RetryOn.Retriable4xx) != 0)
        {
            return true;
        }

        if ((On & RetryOn.RetriableStatusCodes) != 0 && StatusCodes.Contains(status))
        {
            return true;
        }

        return outcome.GrpcStatus switch
        {
            1 => (On & RetryOn.GrpcCancelled) != 0,
            4 => (On & RetryOn.GrpcDeadlineExceeded) != 0,
            8 => (On & RetryOn.GrpcResourceExhausted) != 0,
            13 => (On & RetryOn.GrpcInternal) != 0,
            14 => (On & RetryOn.GrpcUnavailable) != 0,
            _ => false,
        };
    }

    /// <summary>The wait before retry <paramref name="retry"/> (1 = the first retry).</summary>
    public TimeSpan Backoff(int retry, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retry, 1);
        double ceiling = BaseInterval.Ticks * (Math.Pow(2, Math.Min(retry, 30)) - 1);
        double capped = Math.Min(ceiling, MaxInterval.Ticks);
        return TimeSpan.FromTicks((long)(random.NextDouble() * capped));
    }

    /// <summary>
    /// Whether a request may be sent again at all: its body was not streamed past what the proxy kept, or it had
    /// none. (Envoy retries any method once the body is buffered; the buffer limit decides.)
    /// </summary>
    public static bool CanResend(bool bodyFullyBuffered, bool bodyStarted) => bodyFullyBuffered || !bodyStarted;
}

/// <summary>
/// DestinationRule <c>retryBudget</c> (Envoy's retry_budget): retries in flight stay within
/// <c>percent</c> of the requests in flight, but <c>minRetryConcurrency</c> are always allowed. Without a budget,
/// the circuit breaker's <c>maxRetries</c> bounds retries instead.
/// </summary>
public sealed class RetryBudgetGate(RetryBudget budget)
{
    private long _active;
    private long _retries;

    public RetryBudget Budget { get; } = budget;

    public long ActiveRequests => Interlocked.Read(ref _active);

    public long ActiveRetries => Interlocked.Read(ref _retries);

    public void RequestStarted() => Interlocked.Increment(ref _active);

    public void RequestEnded() => Interlocked.Decrement(ref _active);

    /// <summary>Takes a retry slot if the budget allows one now; pair a success with <see cref="RetryEnded"/>.</summary>
    public bool TryStartRetry()
    {
        long allowed = Math.Max(Budget.EffectiveMinRetryConcurrency, (long)(Budget.EffectivePercent / 100 * Interlocked.Read(ref _active)));
        long current = Interlocked.Read(ref _retries);
        while (current < allowed)
        {
            long seen = Interlocked.CompareExchange(ref _retries, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    public void RetryEnded() => Interlocked.Decrement(ref _retries);
}
