using System.Collections.Concurrent;
using System.Net;
using Ambient.Mesh.Model.L7;
using Ambient.Waypoint.Proxy;

namespace Ambient.Waypoint.Governance;

/// <summary>
/// The upstream connection pools, one per set of DestinationRule <c>connectionPool</c> settings that shape
/// connections: <c>tcp.connectTimeout</c> (opening the HBONE tunnel, Envoy's connect_timeout: UF when it expires),
/// <c>http.idleTimeout</c> (else <c>tcp.idleTimeout</c>, 0s meaning never; Istio's 1 h when the rule sets neither) and
/// <c>http.maxRequestsPerConnection</c>. Destinations without a connectionPool share the default pool (10 s
/// connect, 1 min idle), so nothing changes until a rule says so. A pool is a <see cref="SocketsHttpHandler"/> of its
/// own, so settings never leak between destinations that differ.
/// </summary>
/// <remarks>
/// <c>maxRequestsPerConnection: 1</c> (Envoy's way to turn keep-alive off) sends every HTTP/1.1 request with
/// <c>Connection: close</c> (an HTTP/2 request gets a connection of its own as below); a larger count goes through a
/// <see cref="CappedConnectionPool"/>, which owns its connections and counts requests on each.
/// </remarks>
internal sealed class ConnectionPools(UpstreamConnector upstream) : HttpMessageHandler
{
    private readonly record struct Shape(TimeSpan ConnectTimeout, TimeSpan IdleTimeout);

    private readonly HttpMessageInvoker _default = new(upstream.CreateHandler(), disposeHandler: true);
    private readonly ConcurrentDictionary<Shape, HttpMessageInvoker> _pools = new();
    private readonly ConcurrentDictionary<(Shape, int), CappedConnectionPool> _capped = new();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var pool = _default;
        CappedConnectionPool? capped = null;
        if (request.Options.TryGetValue(AttemptPlan.Key, out var plan) && plan.Destination?.Policy?.ConnectionPool is { } settings)
        {
            int maxRequests = settings.Http?.EffectiveMaxRequestsPerConnection ?? 0;
            if (maxRequests == 1 && request.Version == HttpVersion.Version11)
            {
                request.Headers.ConnectionClose = true;
                pool = For(settings);
            }
            else if (maxRequests > 0)
            {
                capped = Capped(settings, maxRequests);
            }
            else
            {
                pool = For(settings);
            }
        }
        try
        {
            return capped is not null
                ? await capped.SendAsync(request, cancellationToken).ConfigureAwait(false)
                : await pool.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (ex.InnerException is TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            // The handler reports its connect timeout as a cancellation; Envoy counts it as a connect failure (UF,
            // retried under connect-failure), not as the route's timeout (UT).
            throw new HttpRequestException(HttpRequestError.ConnectionError, $"upstream connect timeout: {ex.InnerException.Message}", ex);
        }
    }

    internal static (TimeSpan Connect, TimeSpan Idle) Timeouts(ConnectionPoolSettings settings) =>
        (settings.Tcp?.EffectiveConnectTimeout ?? TimeSpan.FromSeconds(10), settings.EffectiveIdleTimeout ?? Timeout.InfiniteTimeSpan);

    private HttpMessageInvoker For(ConnectionPoolSettings settings)
    {
        var (connect, idle) = Timeouts(settings);
        var shape = new Shape(connect, idle);
        if (_pools.TryGetValue(shape, out var pool))
        {
            return pool;
        }
#pragma warning disable CA2000 // kept in _pools and disposed with this handler (a losing racer's is disposed here)
        var created = new HttpMessageInvoker(upstream.CreateHandler(connect, idle), disposeHandler: true);
#pragma warning restore CA2000
        pool = _pools.GetOrAdd(shape, created);
        if (!ReferenceEquals(pool, created))
        {
            created.Dispose();
        }
        return pool;
    }

    private CappedConnectionPool Capped(ConnectionPoolSettings settings, int maxRequests)
    {
        var (connect, idle) = Timeouts(settings);
        var key = (new Shape(connect, idle), maxRequests);
        if (_capped.TryGetValue(key, out var pool))
        {
            return pool;
        }
        var created = new CappedConnectionPool(maxRequests, () =>
        {
            // One connection per endpoint and lane: the lane's count is that connection's count.
            var handler = upstream.CreateHandler(connect, idle);
            handler.MaxConnectionsPerServer = 1;
            handler.EnableMultipleHttp2Connections = false;
            return handler;
        });
        pool = _capped.GetOrAdd(key, created);
        if (!ReferenceEquals(pool, created))
        {
            created.Dispose();
        }
        return pool;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _default.Dispose();
            foreach (var capped in _capped.Values)
            {
                capped.Dispose();
            }
            foreach (var pool in _pools.Values)
            {
                pool.Dispose();
            }
        }
        base.Dispose(disposing);
    }
}
