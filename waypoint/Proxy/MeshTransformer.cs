using Ambient.Waypoint.Governance;
using Ambient.Waypoint.Routing;
using Ambient.Waypoint.Telemetry.Tracing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Ambient.Waypoint.Proxy;

/// <summary>
/// Applies a route's edits to the forwarded request and the response: the Host is kept (the application expects its
/// own name, not a pod address) unless a rewrite sets one, the path is rewritten when a route says so, and header
/// modifiers run set, add, remove in that order.
/// </summary>
/// <param name="attempts">Handed to the retry loop (<see cref="RetryingHandler"/>) through the outgoing request's options.</param>
internal sealed class MeshTransformer(RouteDecision decision, AttemptPlan? attempts = null) : HttpTransformer
{
    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
        if (attempts is not null)
        {
            proxyRequest.Options.Set(AttemptPlan.Key, attempts);
        }
        WaypointTracing.InjectUnsampled(httpContext, proxyRequest);
        var request = httpContext.Request;
        proxyRequest.Headers.Host = decision.Host ?? (request.Host.HasValue ? request.Host.Value : null);
        if (decision.Path is { } path)
        {
            proxyRequest.RequestUri = RequestUtilities.MakeDestinationAddress(destinationPrefix, new PathString(path), request.QueryString);
        }
        var edits = decision.RequestHeaders;
        if (edits.IsEmpty)
        {
            return;
        }
        foreach (var (name, value) in edits.Set)
        {
            Remove(proxyRequest, name);
            Add(proxyRequest, name, value);
        }
        foreach (var (name, value) in edits.Add)
        {
            Add(proxyRequest, name, value);
        }
        foreach (var name in edits.Remove)
        {
            Remove(proxyRequest, name);
        }
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        bool proceed = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
        ApplyResponseEdits(httpContext.Response, decision.ResponseHeaders);
        // A gRPC "Trailers-Only" answer (grpc-status among the headers, no body: PROTOCOL-HTTP2.md) must reach the
        // client as one HEADERS frame that ends the stream, or clients read the status as initial metadata and then
        // fail the call with INTERNAL. Skipping the (empty) body lets the response end with its headers.
        return proceed && !IsTrailersOnly(proxyResponse);
    }

    private static bool IsTrailersOnly(HttpResponseMessage? response) =>
        response is { Version.Major: 2 } && response.Headers.Contains("grpc-status");

    /// <summary>Response header modifiers, also for answers the waypoint makes itself (redirects).</summary>
    public static void ApplyResponseEdits(HttpResponse response, HeaderEdits edits)
    {
        if (edits.IsEmpty)
        {
            return;
        }
        var headers = response.Headers;
        foreach (var (name, value) in edits.Set)
        {
            headers[name] = value;
        }
        foreach (var (name, value) in edits.Add)
        {
            headers.Append(name, value);
        }
        foreach (var name in edits.Remove)
        {
            headers.Remove(name);
        }
    }

    private static void Add(HttpRequestMessage request, string name, string value)
    {
        if (!request.Headers.TryAddWithoutValidation(name, value))
        {
            request.Content?.Headers.TryAddWithoutValidation(name, value);
        }
    }

    private static void Remove(HttpRequestMessage request, string name)
    {
        request.Headers.Remove(name);
        request.Content?.Headers.Remove(name);
    }
}
