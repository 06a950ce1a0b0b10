using System.Diagnostics;
using System.Net;
using Ambient.Mesh.Sources;
using Ambient.Waypoint.Authorization;
using Ambient.Waypoint.Governance;
using Ambient.Waypoint.Hbone;
using Ambient.Waypoint.Routing;
using Ambient.Waypoint.Telemetry;
using Ambient.Waypoint.Telemetry.Tracing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Ambient.Waypoint.Proxy;

/// <summary>
/// What the waypoint does with each request Kestrel parsed from a tunnel: L7 authorization (403 "RBAC: access
/// denied", flag DENY), routing (404 NR when routes exist and none matches; redirects and direct responses answered
/// here), an endpoint by the DestinationRule's load balancer (503 UH when none is healthy), then YARP's forwarder over
/// an HBONE tunnel to that pod. Every request ends with one metrics update and one access log line.
/// </summary>
internal sealed partial class ProxyHandler(
    MeshStore store,
    WaypointIdentity identity,
    IHttpForwarder forwarder,
    UpstreamConnector upstream,
    EndpointPicker picker,
    GovernanceState governance,
    WaypointMetrics metrics,
    WaypointTracing tracing,
    AccessLog accessLog,
    ILogger<ProxyHandler> logger) : IDisposable
{
    // Retries sit between YARP and the pooled HBONE handler, so each attempt is a fresh send through the pool.
    private readonly HttpMessageInvoker _invoker = new(new RetryingHandler(governance, static () => Random.Shared) { InnerHandler = new TracePropagationHandler(tracing) { InnerHandler = new ConnectionPools(upstream) } }, disposeHandler: true);
    private readonly RequestMirror _mirror = new(picker, logger);

    /// <summary>Closes the upstream pool's connections (the host disposes this singleton on shutdown).</summary>
    public void Dispose() => _invoker.Dispose();

    // Istio's waypoint has no timeout unless a route sets one (issue 11 adds route timeouts); the activity timeout
    // only reaps an exchange that has been completely silent this long.
    private static readonly ForwarderRequestConfig Http1 = new() { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact, ActivityTimeout = TimeSpan.FromMinutes(5) };
    private static readonly ForwarderRequestConfig Http2 = new() { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, ActivityTimeout = TimeSpan.FromMinutes(5) };

    private static readonly byte[] RbacDenied = "RBAC: access denied"u8.ToArray();
    private static readonly byte[] NoHealthyUpstream = "no healthy upstream"u8.ToArray();
    private static readonly byte[] Overflow = "upstream connect error or disconnect/reset before headers. reset reason: overflow"u8.ToArray();

    public async Task HandleAsync(HttpContext context, TunnelInfo tunnel)
    {
        var request = context.Request;
        var record = new RequestRecord(tunnel, Stopwatch.GetTimestamp())
        {
            Method = request.Method,
            Path = $"{request.PathBase}{request.Path}{request.QueryString}",
            Authority = request.Host.Value ?? "",
            Protocol = request.Protocol,
            Grpc = request.ContentType is { } ct && ct.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase),
            DestinationService = tunnel.Service,
            DestinationWorkload = tunnel.Workload,
        };
        if (!request.Headers.ContainsKey("x-request-id"))
        {
            // Istio's request id: generated at the first proxy, kept by the next ones and by retries.
            request.Headers["x-request-id"] = RequestId.Next();
        }
        var span = tracing.StartServer(context, tunnel);
        var requestBody = new CountingStream(request.Body);
        request.Body = requestBody;
        var responseBody = new CountingStream(context.Response.Body);
        context.Response.Body = responseBody;
        try
        {
            await HandleCoreAsync(context, tunnel, record).ConfigureAwait(false);
        }
        finally
        {
            context.Response.Body = responseBody.Inner;
            request.Body = requestBody.Inner;
            record.Status = context.Response.StatusCode;
            record.RequestBytes = requestBody.Count + HeaderBytes(request.Headers);
            record.ResponseBytes = responseBody.Count + HeaderBytes(context.Response.Headers);
            if (record.Grpc)
            {
                record.GrpcStatus = GrpcStatus(context);
            }
            double ms = Stopwatch.GetElapsedTime(record.StartTicks).TotalMilliseconds;
            metrics.Record(record, ms);
            accessLog.Write(record, ms);
            tracing.EndServer(span, context, record);
        }
    }

    private async Task HandleCoreAsync(HttpContext context, TunnelInfo tunnel, RequestRecord record)
    {
        var snapshot = store.Current;
        var decision = L7Authorizer.Evaluate(snapshot, identity, tunnel, tunnel.Service, context.Request);
        if (!decision.DryRun.IsDefaultOrEmpty)
        {
            LogDryRun(logger, string.Join(",", decision.DryRun), record.Method, record.Path, tunnel.Peer.ToString());
        }
        if (!decision.Allowed)
        {
            record.ResponseFlags = "DENY";
            record.Detail = decision.Reason;
            await RespondAsync(context, StatusCodes.Status403Forbidden, RbacDenied).ConfigureAwait(false);
            return;
        }
        if (tunnel.Service is { } limited && await Governor.RateLimitAsync(governance, snapshot, limited, context, record).ConfigureAwait(false))
        {
            return;
        }

        var route = Router.Route(snapshot, tunnel, context.Request);
        record.Route = route.RouteName;
        record.Detail = route.Detail;
        switch (route.Outcome)
        {
            case RouteOutcome.NoRoute:
                record.ResponseFlags = "NR";
                await RespondAsync(context, StatusCodes.Status404NotFound, null).ConfigureAwait(false);
                return;
            case RouteOutcome.Respond:
                if (route.Location is { } location)
                {
                    context.Response.Headers.Location = location;
                }
                MeshTransformer.ApplyResponseEdits(context.Response, route.ResponseHeaders);
                await RespondAsync(context, route.Status, route.Body?.ToArray()).ConfigureAwait(false);
                return;
        }

        if (route.Policy.Fault is { } fault && await Governor.InjectFaultAsync(fault, governance.Time, Random.Shared, context, record).ConfigureAwait(false))
        {
            return;
        }

        PickedEndpoint? picked;
        DestinationGovernance? governed = null;
        if (route.Backend is { } backend)
        {
            record.DestinationService = backend.Service;
            governed = governance.For(snapshot, backend);
            picked = picker.Pick(snapshot, backend, context.Request, tunnel.Client.Address, governed.Outliers);
        }
        else if (route.Workload is { } w && !w.WorkloadIps.IsDefaultOrEmpty)
        {
            picked = new PickedEndpoint(w, w.WorkloadIps[0], route.WorkloadPort, null);
        }
        else
        {
            picked = null;
        }
        if (picked is not { } endpoint)
        {
            record.ResponseFlags = "UH";
            record.Detail = $"no healthy endpoint for {record.DestinationService?.Hostname ?? record.Authority}";
            await RespondAsync(context, StatusCodes.Status503ServiceUnavailable, NoHealthyUpstream).ConfigureAwait(false);
            return;
        }
        var policy = route.Policy;
        // The route timeout bounds everything from here: waiting for a connection, all attempts and the response
        // (Envoy's router timeout starts once the router has the request).
        using var deadline = policy.Timeout is { } timeout ? new CancellationTokenSource(timeout, governance.Time) : null;
        DestinationGovernance.Admission? admission = null;
        if (governed is not null)
        {
            try
            {
                admission = await Governor.AdmitAsync(governed, !record.Grpc, deadline, context.RequestAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline is { IsCancellationRequested: true } && !context.RequestAborted.IsCancellationRequested)
            {
                endpoint.Load?.Release();
                Governor.AddFlag(record, "UT");
                record.Detail = $"route timeout {policy.Timeout!.Value.TotalMilliseconds} ms expired waiting for a connection";
                await RespondAsync(context, StatusCodes.Status504GatewayTimeout, null).ConfigureAwait(false);
                return;
            }
            if (admission is null)
            {
                endpoint.Load?.Release();
                governance.Overflow(governed);
                Governor.AddFlag(record, "UO");
                record.Detail = $"circuit breaker open for {governed.Service}";
                await RespondAsync(context, StatusCodes.Status503ServiceUnavailable, Overflow).ConfigureAwait(false);
                return;
            }
        }
        using var admitted = admission;
        byte[]? body = null;
        if (policy.Retry.Attempts > 0)
        {
            try
            {
                body = await Governor.KeepBodyAsync(context.Request).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException)
            {
                endpoint.Load?.Release();
                Governor.AddFlag(record, "DC");
                record.Detail = $"client went away while sending the body: {ex.Message}";
                await RespondAsync(context, StatusCodes.Status400BadRequest, null).ConfigureAwait(false);
                return;
            }
        }
        var mirrors = RequestMirror.Choose(route);
        // The body streams to the primary; a copy is kept (up to the retry limit) for the mirrors, and for retries of a
        // body without a declared length (a declared one up to the limit was read into `body` above).
        bool replayForRetry = policy.Retry.Attempts > 0 && context.Request.ContentLength is null;
        using var replay = (!mirrors.IsEmpty || replayForRetry) && RequestMirror.HasBody(context.Request) ? new ReplayableBody(context.Request.Body, AttemptPlan.MaxBufferedBody) : null;
        if (replay is not null)
        {
            context.Request.Body = replay.OpenReader();
        }
        _mirror.Start(mirrors, snapshot, context.Request, route, replay, record.Grpc, _invoker);
        var plan = new AttemptPlan(policy.Retry, endpoint, avoid => route.Backend is { } b ? picker.Pick(snapshot, b, context.Request, tunnel.Client.Address, governed?.Outliers, avoid) : null)
        {
            Destination = governed,
            Body = body,
            Replay = body is null && replayForRetry ? replay : null,
            CanResend = policy.Retry.Attempts == 0 || Governor.CanResend(context.Request) || (replayForRetry && replay is not null),
        };
        record.UpstreamCluster = UpstreamCluster(route, endpoint);
        using var clientSpan = tracing.StartClient(route.Backend?.Service.Hostname ?? endpoint.Address.ToString(), route.Backend?.Port ?? endpoint.Port);
        ForwarderError error;
        try
        {
            error = await forwarder.SendAsync(context, Prefix(endpoint), _invoker, record.Grpc ? Http2 : Http1, new MeshTransformer(route, plan), deadline?.Token ?? CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            plan.Release();
        }
        record.DestinationWorkload = plan.Current.Workload;
        record.Upstream = Prefix(plan.Current)[7..];
        if (error is ForwarderError.RequestBodyClient or ForwarderError.RequestBodyDestination or ForwarderError.RequestBodyCanceled
            && plan.Retries > 0 && replay is { Completed: true } && context.Response.HasStarted)
        {
            // YARP reports the first attempt's body copy, cut when that attempt failed; a retry sent the whole
            // (replayed) body and its answer went out, so the exchange did not fail.
            error = ForwarderError.None;
        }
        bool routeTimedOut = deadline is { IsCancellationRequested: true } && !context.RequestAborted.IsCancellationRequested;
        if (routeTimedOut || plan.TimedOut)
        {
            Governor.AddFlag(record, plan.Exhausted ? "UT,URX" : "UT");
            record.Detail = routeTimedOut ? $"route timeout {policy.Timeout!.Value.TotalMilliseconds} ms expired" : plan.Detail;
            if (!context.Response.HasStarted)
            {
                context.Response.StatusCode = StatusCodes.Status504GatewayTimeout;
            }
        }
        else if (error != ForwarderError.None)
        {
            Governor.AddFlag(record, plan.Exhausted ? Flag(error) + ",URX" : Flag(error));
            var failure = context.Features.Get<IForwarderErrorFeature>()?.Exception;
            record.Detail = failure?.GetBaseException().Message ?? error.ToString();
        }
        else if (plan.Exhausted)
        {
            Governor.AddFlag(record, "URX");
        }
        tracing.EndClient(clientSpan, context, record);
        if (error != ForwarderError.None)
        {
            LogForwardError(logger, error.ToString(), record.Upstream, record.Detail);
        }
    }

    /// <summary>Istio's cluster name for a waypoint's upstream: <c>inbound-vip|port|http[/subset]|host</c>, or the pod's address.</summary>
    private static string UpstreamCluster(RouteDecision route, PickedEndpoint endpoint) => route.Backend is { } b
        ? $"inbound-vip|{b.Port}|http{(b.Subset is null ? "" : "/" + b.Subset)}|{b.Service.Hostname}"
        : $"inbound-pod|{endpoint.Port}||{endpoint.Address}";

    internal static string Prefix(PickedEndpoint endpoint) => endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
        ? $"http://[{endpoint.Address}]:{endpoint.Port}"
        : $"http://{endpoint.Address}:{endpoint.Port}";

    /// <summary>Envoy's response flag for a forwarding failure.</summary>
    private static string Flag(ForwarderError error) => error switch
    {
        ForwarderError.Request => "UF",
        ForwarderError.RequestTimedOut => "UT",
        ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled => "DC",
        ForwarderError.RequestBodyClient or ForwarderError.ResponseBodyClient => "DC",
        ForwarderError.RequestBodyDestination or ForwarderError.ResponseBodyDestination => "UR",
        ForwarderError.ResponseHeaders => "UC",
        _ => "UR",
    };

    private static async Task RespondAsync(HttpContext context, int status, byte[]? body)
    {
        if (context.Response.HasStarted)
        {
            return;
        }
        context.Response.StatusCode = status;
        if (body is { Length: > 0 })
        {
            context.Response.ContentType = "text/plain";
            context.Response.ContentLength = body.Length;
            await context.Response.Body.WriteAsync(body).ConfigureAwait(false);
        }
        else
        {
            context.Response.ContentLength = 0;
        }
    }

    private static string? GrpcStatus(HttpContext context)
    {
        var trailers = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseTrailersFeature>()?.Trailers;
        if (trailers is not null && trailers.TryGetValue("grpc-status", out var t) && t.Count > 0)
        {
            return t[0];
        }
        return context.Response.Headers.TryGetValue("grpc-status", out var h) && h.Count > 0 ? h[0] : null;
    }

    private static long HeaderBytes(IHeaderDictionary headers)
    {
        long n = 0;
        foreach (var (k, v) in headers)
        {
            foreach (var s in v)
            {
                n += k.Length + (s?.Length ?? 0) + 4;
            }
        }
        return n;
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "dry-run policy {Policies} would have denied {Method} {Path} from {Peer}")]
    private static partial void LogDryRun(ILogger logger, string policies, string method, string path, string peer);

    [LoggerMessage(EventId = 201, Level = LogLevel.Debug, Message = "forwarding failed ({Error}) to {Upstream}: {Detail}")]
    private static partial void LogForwardError(ILogger logger, string error, string? upstream, string? detail);
}
