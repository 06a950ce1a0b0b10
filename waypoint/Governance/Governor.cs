using System.Globalization;
using Ambient.Mesh.Governance;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Mesh.State;
using Ambient.Waypoint.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Ambient.Waypoint.Governance;

/// <summary>
/// The governance steps the request path takes before forwarding: local rate limits (429, flag RL), fault injection
/// (flags DI / FI), and keeping a small request body so that a retry can send it again.
/// </summary>
internal static class Governor
{
    private static readonly byte[] RateLimited = "local_rate_limited"u8.ToArray();
    private static readonly byte[] FaultAbort = "fault filter abort"u8.ToArray();

    /// <summary>Adds one of Envoy's response flags (they are listed comma-separated when several apply).</summary>
    public static void AddFlag(RequestRecord record, string flag) =>
        record.ResponseFlags = record.ResponseFlags is "-" or "" ? flag : record.ResponseFlags + "," + flag;

    /// <summary>
    /// Takes a token from every HTTPLocalRateLimitPolicy on the service, for the caller's SPIFFE identity (the
    /// tunnel's authenticated peer). Answers 429 and returns true when one refuses.
    /// </summary>
    public static async ValueTask<bool> RateLimitAsync(GovernanceState state, MeshSnapshot snapshot, Service service, HttpContext context, RequestRecord record)
    {
        var limiters = state.LimitersFor(snapshot, service, record.Tunnel.Authority.Port);
        for (int i = 0; i < limiters.Count; i++)
        {
            var verdict = limiters[i].TryAcquire(record.Tunnel.Peer);
            if (verdict == RateLimitVerdict.Allowed)
            {
                continue;
            }
            var policy = limiters[i].Policy;
            state.RateLimited(service, verdict);
            AddFlag(record, "RL");
            record.Detail = $"HTTPLocalRateLimitPolicy {policy.Namespace}/{policy.Name}: {(verdict == RateLimitVerdict.Total ? "total" : "per-client")} limit reached";
            await RespondAsync(context, StatusCodes.Status429TooManyRequests, RateLimited).ConfigureAwait(false);
            return true;
        }
        return false;
    }

    /// <summary>
    /// VirtualService <c>fault</c>, as Envoy's fault filter applies it: the delay first (the request waits, then goes
    /// on), then the abort (answered here with the HTTP status, or a trailers-only gRPC status). Returns true when
    /// the request was answered.
    /// </summary>
    public static async ValueTask<bool> InjectFaultAsync(HttpFaultInjection fault, TimeProvider time, Random random, HttpContext context, RequestRecord record)
    {
        if (fault.Delay is { FixedDelay: { } delay } d && delay > TimeSpan.Zero && Hit(d.Percentage, random))
        {
            AddFlag(record, "DI");
            await Task.Delay(delay, time, context.RequestAborted).ConfigureAwait(false);
        }
        if (fault.Abort is not { } abort || !Hit(abort.Percentage, random))
        {
            return false;
        }
        AddFlag(record, "FI");
        record.Detail = "fault filter abort";
        if (context.Response.HasStarted)
        {
            return true;
        }
        if (abort.GrpcStatus is { } grpc)
        {
            // gRPC "Trailers-Only": the status travels in the headers of a 200 response without a body.
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = grpc.ToString(CultureInfo.InvariantCulture);
            context.Response.Headers["grpc-message"] = "fault filter abort";
            return true;
        }
        await RespondAsync(context, abort.HttpStatus ?? StatusCodes.Status503ServiceUnavailable, FaultAbort).ConfigureAwait(false);
        return true;
    }

    /// <summary>The destination's circuit breaker admission; a wait for a connection also ends at the route timeout.</summary>
    public static async ValueTask<DestinationGovernance.Admission?> AdmitAsync(DestinationGovernance destination, bool http1, CancellationTokenSource? deadline, CancellationToken aborted)
    {
        if (deadline is null)
        {
            return await destination.AdmitAsync(http1, aborted).ConfigureAwait(false);
        }
        using var either = CancellationTokenSource.CreateLinkedTokenSource(aborted, deadline.Token);
        return await destination.AdmitAsync(http1, either.Token).ConfigureAwait(false);
    }

    /// <summary>Percentage 0-100 of requests; 100 always, 0 never.</summary>
    internal static bool Hit(double percentage, Random random) => percentage >= 100 || (percentage > 0 && random.NextDouble() * 100 < percentage);

    /// <summary>Whether the request can be sent twice: it has no body, or a declared one small enough to keep.</summary>
    public static bool CanResend(HttpRequest request) =>
        !HasBody(request) || request.ContentLength is long n && n <= AttemptPlan.MaxBufferedBody;

    /// <summary>
    /// Reads a body of declared length up to <see cref="AttemptPlan.MaxBufferedBody"/> into memory (the request then
    /// reads from the copy). Bodies without a length (chunked, HTTP/2 without content-length) or larger ones stream
    /// as before and are not retried.
    /// </summary>
    public static async ValueTask<byte[]?> KeepBodyAsync(HttpRequest request)
    {
        if (!HasBody(request) || request.ContentLength is not long n || n > AttemptPlan.MaxBufferedBody)
        {
            return null;
        }
        var buffer = new byte[n];
        await request.Body.ReadExactlyAsync(buffer, request.HttpContext.RequestAborted).ConfigureAwait(false);
        request.Body = new MemoryStream(buffer, writable: false);
        return buffer;
    }

    private static bool HasBody(HttpRequest request) =>
        request.ContentLength is not 0
        && (request.ContentLength is > 0 || (request.HttpContext.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? false));

    private static async Task RespondAsync(HttpContext context, int status, byte[] body)
    {
        if (context.Response.HasStarted)
        {
            return;
        }
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain";
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
    }
}
