using System.Net;
using Ambient.Mesh.Governance;
using Ambient.Waypoint.Routing;

namespace Ambient.Waypoint.Governance;

/// <summary>
/// The forwarder's retry loop, between YARP and the HBONE connection pool: each attempt gets the per-try timeout,
/// its result goes to outlier detection, and an attempt whose end matches the route's <c>retry_on</c> conditions is
/// tried again after a jittered back-off on another endpoint when there is one, within the retry budget (or
/// <c>maxRetries</c>). Only the response headers are awaited here: once a response is handed to YARP it streams and
/// can no longer be retried, as in Envoy.
/// </summary>
internal sealed class RetryingHandler(GovernanceState state, Func<Random> random) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!request.Options.TryGetValue(AttemptPlan.Key, out var plan))
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        var destination = plan.Destination;
        var tried = new HashSet<string>(StringComparer.Ordinal);
        var attempt = request;
        bool holdingRetry = false;
        try
        {
            while (true)
            {
                var endpoint = plan.Current;
                tried.Add(endpoint.Workload.Uid);
                plan.TimedOut = false;
                HttpResponseMessage? response = null;
                Exception? failure = null;
                AttemptOutcome outcome;
                using (var perTry = plan.Retry.PerTryTimeout is { } t ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : null)
                {
                    ITimer? timer = perTry is null ? null : state.Time.CreateTimer(static s => ((CancellationTokenSource)s!).Cancel(), perTry, plan.Retry.PerTryTimeout!.Value, Timeout.InfiniteTimeSpan);
                    try
                    {
                        response = await base.SendAsync(attempt, perTry?.Token ?? cancellationToken).ConfigureAwait(false);
                        outcome = AttemptOutcome.Response((int)response.StatusCode, GrpcStatus(response));
                    }
                    catch (OperationCanceledException ex) when (perTry is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
                    {
                        plan.TimedOut = true;
                        failure = new HttpRequestException(HttpRequestError.Unknown, $"per-try timeout {plan.Retry.PerTryTimeout!.Value.TotalMilliseconds} ms expired", ex);
                        outcome = new AttemptOutcome(AttemptEnd.Reset);
                    }
                    catch (HttpRequestException ex) when (!cancellationToken.IsCancellationRequested)
                    {
                        failure = ex;
                        outcome = new AttemptOutcome(Classify(ex));
                    }
                    finally
                    {
                        timer?.Dispose();
                    }
                }
                if (holdingRetry)
                {
                    destination!.RetryEnded();
                    holdingRetry = false;
                }
                Report(destination, endpoint, outcome);
                plan.Detail = failure?.GetBaseException().Message;

                if (!plan.Retry.Matches(outcome))
                {
                    return response ?? throw failure!;
                }
                // A streamed body that went past the kept limit cannot be sent again: the answer stands (not URX).
                bool resendable = plan.CanResend && plan.Replay is not { CanReplay: false };
                if (plan.Retries >= plan.Retry.Attempts || !resendable)
                {
                    plan.Exhausted = plan.Retry.Attempts > 0 && resendable;
                    if (plan.Exhausted && destination is not null)
                    {
                        state.Retried(destination.Service, "exhausted");
                    }
                    return response ?? throw failure!;
                }
                if (destination is not null && !destination.TryStartRetry())
                {
                    // Envoy's retry overflow: the breaker refuses the retry and the last answer stands.
                    plan.Exhausted = true;
                    state.Retried(destination.Service, "overflow");
                    return response ?? throw failure!;
                }
                holdingRetry = destination is not null;
                response?.Dispose();
                plan.Retries++;
                if (destination is not null)
                {
                    state.Retried(destination.Service, "retried");
                }
                var wait = plan.Retry.Backoff(plan.Retries, random());
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, state.Time, cancellationToken).ConfigureAwait(false);
                }
                var next = plan.PickAnother(plan.Retry.OtherHost ? tried : new HashSet<string>());
                if (next is not { } n)
                {
                    return response is null ? throw failure! : throw new HttpRequestException(HttpRequestError.ConnectionError, "no healthy upstream left to retry on");
                }
                plan.Use(n);
                attempt = Clone(request, plan, n);
            }
        }
        finally
        {
            if (holdingRetry)
            {
                destination!.RetryEnded();
            }
        }
    }

    private static void Report(DestinationGovernance? destination, PickedEndpoint endpoint, AttemptOutcome outcome)
    {
        if (destination?.Outliers is not { } outliers)
        {
            return;
        }
        if (outcome.End == AttemptEnd.Response)
        {
            outliers.Report(endpoint.Workload.Uid, UpstreamOutcome.Response, outcome.Status);
        }
        else
        {
            outliers.Report(endpoint.Workload.Uid, UpstreamOutcome.LocalFailure);
        }
    }

    private static AttemptEnd Classify(HttpRequestException ex)
    {
        // REFUSED_STREAM (0x7): the upstream did not process the request, so any request may go again.
        if (ex.InnerException is HttpProtocolException { ErrorCode: 0x7 })
        {
            return AttemptEnd.RefusedStream;
        }
        return ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError
            ? AttemptEnd.ConnectFailure
            : AttemptEnd.Reset;
    }

    private static int? GrpcStatus(HttpResponseMessage response) =>
        response.Headers.TryGetValues("grpc-status", out var values) && int.TryParse(values.FirstOrDefault(), out int s) ? s : null;

    /// <summary>The same request for another endpoint, with the kept body (or the streamed one, replayed and read on).</summary>
    private static HttpRequestMessage Clone(HttpRequestMessage original, AttemptPlan plan, PickedEndpoint endpoint)
    {
        var uri = new UriBuilder(original.RequestUri!) { Host = endpoint.Address.ToString(), Port = endpoint.Port }.Uri;
        var clone = new HttpRequestMessage(original.Method, uri) { Version = original.Version, VersionPolicy = original.VersionPolicy };
        foreach (var (name, values) in original.Headers)
        {
            clone.Headers.TryAddWithoutValidation(name, values);
        }
        if (original.Content is { } content)
        {
            clone.Content = plan.Replay is { } replay ? new StreamContent(replay.OpenReader()) : new ByteArrayContent(plan.Body ?? []);
            foreach (var (name, values) in content.Headers)
            {
                clone.Content.Headers.TryAddWithoutValidation(name, values);
            }
        }
        return clone;
    }
}
