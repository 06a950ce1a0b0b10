using System.Collections.Immutable;
using Ambient.Mesh.State;
using Ambient.Waypoint.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Proxy;

/// <summary>
/// Request mirroring (HTTPRoute RequestMirror, VirtualService mirror / mirrors): a copy of the request goes to the
/// mirror's backend, fire and forget, with <c>-shadow</c> appended to the host as Envoy does. The copy leaves once the
/// primary has read the whole body (kept up to <see cref="ReplayableBody.Limit"/>; a larger body is not mirrored), its
/// answer is dropped, and nothing about it (slow, down, failing) reaches the client's exchange. At most
/// <see cref="MaxInFlight"/> copies are outstanding; more are skipped rather than queued.
/// </summary>
internal sealed partial class RequestMirror(EndpointPicker picker, ILogger logger)
{
    public const int MaxInFlight = 256;

    /// <summary>How long a copy may take before it is abandoned (Envoy bounds a shadow by the route's timeout).</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static readonly HashSet<string> NotCopied = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Content-Length",
    };

    private int _inFlight;

    /// <summary>The mirrors this request goes to (each by its share); empty for most requests.</summary>
    public static ImmutableArray<MirrorTarget> Choose(RouteDecision route)
    {
        if (route.Mirrors.IsDefaultOrEmpty)
        {
            return [];
        }
        var chosen = ImmutableArray.CreateBuilder<MirrorTarget>();
        foreach (var m in route.Mirrors)
        {
            if (m.Share >= 1 || Random.Shared.NextDouble() < m.Share)
            {
                chosen.Add(m);
            }
        }
        return chosen.ToImmutable();
    }

    /// <summary>
    /// Sends a copy to each of <paramref name="mirrors"/> in the background. Everything it needs from the request is
    /// taken now; the body comes from <paramref name="body"/> once complete (null: the request has none).
    /// </summary>
    public void Start(ImmutableArray<MirrorTarget> mirrors, MeshSnapshot snapshot, HttpRequest request, RouteDecision route, ReplayableBody? body, bool grpc, HttpMessageInvoker invoker)
    {
        foreach (var mirror in mirrors)
        {
            if (Interlocked.Increment(ref _inFlight) > MaxInFlight)
            {
                Interlocked.Decrement(ref _inFlight);
                LogSkipped(logger, mirror.Backend.Service.Hostname, $"{MaxInFlight} copies already in flight");
                continue;
            }
            var tunnel = request.HttpContext.Features.Get<Hbone.TunnelInfo>();
            if (picker.Pick(snapshot, mirror.Backend, request, tunnel?.Client.Address ?? System.Net.IPAddress.None) is not { } endpoint)
            {
                Interlocked.Decrement(ref _inFlight);
                LogSkipped(logger, mirror.Backend.Service.Hostname, "no healthy endpoint");
                continue;
            }
            var copy = Copy(request, route, endpoint, grpc);
            _ = SendAsync(copy, endpoint, mirror, body, invoker);
        }
    }

    private async Task SendAsync(HttpRequestMessage copy, PickedEndpoint endpoint, MirrorTarget mirror, ReplayableBody? body, HttpMessageInvoker invoker)
    {
        // Off the request's own path: nothing below runs before the caller has moved on.
        await Task.Yield();
        try
        {
            using var timeout = new CancellationTokenSource(Timeout);
            if (body is not null)
            {
                if (!await body.Done.WaitAsync(timeout.Token).ConfigureAwait(false))
                {
                    LogSkipped(logger, mirror.Backend.Service.Hostname, body.CanReplay ? "the request ended before its body did" : $"body larger than {body.Limit} bytes");
                    return;
                }
                var content = new ReadOnlyMemoryContent(body.Kept);
                foreach (var (name, values) in copy.Content!.Headers)
                {
                    content.Headers.TryAddWithoutValidation(name, values);
                }
                copy.Content.Dispose();
                copy.Content = content;
            }
            using var response = await invoker.SendAsync(copy, timeout.Token).ConfigureAwait(false);
            // Read the answer to its end so the pooled connection can carry the next request; then drop it.
            await response.Content.CopyToAsync(Stream.Null, timeout.Token).ConfigureAwait(false);
            LogMirrored(logger, copy.Method.Method, copy.RequestUri!.PathAndQuery, mirror.Backend.Service.Hostname, (int)response.StatusCode);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
        {
            LogFailed(logger, mirror.Backend.Service.Hostname, ex.GetBaseException().Message);
        }
        finally
        {
            copy.Dispose();
            endpoint.Load?.Release();
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private static HttpRequestMessage Copy(HttpRequest request, RouteDecision route, PickedEndpoint endpoint, bool grpc)
    {
        string path = route.Path ?? (request.Path.HasValue ? request.Path.Value! : "/");
        var copy = new HttpRequestMessage(new HttpMethod(request.Method), new Uri(ProxyHandler.Prefix(endpoint) + path + request.QueryString.Value))
        {
            Version = grpc ? System.Net.HttpVersion.Version20 : System.Net.HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (HasBody(request))
        {
            // Replaced by the kept body once it is complete; holds the content headers until then.
            copy.Content = new ByteArrayContent([]);
        }
        foreach (var (name, values) in request.Headers)
        {
            if (name.StartsWith(':') || NotCopied.Contains(name))
            {
                continue;
            }
            if (!copy.Headers.TryAddWithoutValidation(name, (IEnumerable<string>)values!))
            {
                copy.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string>)values!);
            }
        }
        copy.Headers.Host = ShadowHost(route.Host ?? request.Host.Value ?? "");
        // A sampled request's copy gets the client span's context from the propagation handler; an unsampled one's here.
        Telemetry.Tracing.WaypointTracing.InjectUnsampled(request.HttpContext, copy);
        return copy;
    }

    /// <summary>Whether the request carries a body (a declared length above 0, or chunked / HTTP/2 without a length).</summary>
    public static bool HasBody(HttpRequest request) =>
        request.ContentLength is > 0
        || (request.ContentLength is null && request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true);

    /// <summary>Envoy's shadow host: "-shadow" after the host name, before any port ("echo:80" -> "echo-shadow:80").</summary>
    internal static string ShadowHost(string host)
    {
        int colon = host.LastIndexOf(':');
        bool hasPort = colon > 0 && host.IndexOf(']', StringComparison.Ordinal) < colon && host.AsSpan(colon + 1).IndexOfAnyExceptInRange('0', '9') < 0;
        return hasPort ? $"{host[..colon]}-shadow{host[colon..]}" : host + "-shadow";
    }

    [LoggerMessage(EventId = 220, Level = LogLevel.Debug, Message = "mirrored {Method} {Path} to {Mirror}: {Status}")]
    private static partial void LogMirrored(ILogger logger, string method, string path, string mirror, int status);

    [LoggerMessage(EventId = 221, Level = LogLevel.Debug, Message = "mirror to {Mirror} failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string mirror, string reason);

    [LoggerMessage(EventId = 222, Level = LogLevel.Debug, Message = "mirror to {Mirror} skipped: {Reason}")]
    private static partial void LogSkipped(ILogger logger, string mirror, string reason);
}
