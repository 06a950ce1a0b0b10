using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Tls;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Hbone;

/// <summary>Creates the TCP socket for an outbound HBONE connection (in-pod mode makes it inside the pod's netns).</summary>
public delegate Socket SocketFactory(AddressFamily family);

/// <summary>What one outbound tunnel needs.</summary>
/// <param name="HboneEndpoint">The peer's HBONE listener, normally destination-ip:15008.</param>
/// <param name="Authority">The CONNECT :authority (workload ip:targetPort, or service VIP:port via a waypoint).</param>
/// <param name="Source">The identity we present.</param>
/// <param name="ExpectedIdentities">Server SANs we accept (the destination workload id, or a service's subjectAltNames).</param>
/// <param name="SourceAddress">Address to bind the outbound socket to, when it is local; part of the pool key.</param>
public sealed record HboneTarget(
    IPEndPoint HboneEndpoint,
    string Authority,
    SpiffeId Source,
    IReadOnlyList<string> ExpectedIdentities,
    IPAddress? SourceAddress,
    SocketFactory? SocketFactory = null);

public sealed record HbonePoolOptions
{
    /// <summary>Istio's ztunnel: at most 100 streams per pooled connection.</summary>
    public int MaxStreamsPerConnection { get; init; } = 100;
    /// <summary>Idle pooled connections are closed after this long (Istio: 5 minutes).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public Http2Options Http2 { get; init; } = new();
}

/// <summary>An open tunnel: the HTTP/2 stream after a 200 answer to CONNECT.</summary>
public sealed record HboneTunnel(Http2Stream Stream, Http2Response Response, SpiffeId PeerIdentity);

/// <summary>
/// Outbound HBONE connections pooled per (source identity, accepted server identities, source IP, peer endpoint),
/// as Istio's ztunnel does: streams are multiplexed onto a connection until it holds
/// <see cref="HbonePoolOptions.MaxStreamsPerConnection"/>, then a new one is dialled. Concurrent requests for a key
/// with no usable connection share one dial rather than racing to open many.
/// </summary>
public sealed class HbonePool : IAsyncDisposable
{
    private readonly CertificateManager _certificates;
    private readonly HbonePoolOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<PoolKey, Entry> _entries = [];
    private readonly Lock _lock = new();
    private readonly Timer _idleTimer;
    private bool _disposed;

    public HbonePool(CertificateManager certificates, HbonePoolOptions options, ILogger logger)
    {
        _certificates = certificates;
        _options = options;
        _logger = logger;
        var period = options.IdleTimeout < TimeSpan.FromSeconds(60) ? options.IdleTimeout / 2 : TimeSpan.FromSeconds(30);
        _idleTimer = new Timer(static s => ((HbonePool)s!).EvictIdle(), this, period, period);
    }

    /// <summary>Connections currently pooled (for /config_dump and tests).</summary>
    public int ConnectionCount
    {
        get
        {
            lock (_lock)
            {
                int n = 0;
                foreach (var e in _entries.Values)
                {
                    n += e.Connections.Count;
                }
                return n;
            }
        }
    }

    /// <summary>Opens a CONNECT stream to <paramref name="target"/>; throws <see cref="HboneException"/> with the reason.</summary>
    public async ValueTask<HboneTunnel> ConnectAsync(HboneTarget target, IReadOnlyList<HeaderField> headers, CancellationToken cancellationToken)
    {
        var key = new PoolKey(target.Source.ToString(), string.Join(',', target.ExpectedIdentities), target.SourceAddress, target.HboneEndpoint);
        // A refused stream (GOAWAY raced us, or the peer's limit was lower than we thought) is retried on another connection.
        for (int attempt = 0; ; attempt++)
        {
            var pooled = await AcquireAsync(key, target, cancellationToken).ConfigureAwait(false);
            Http2Stream stream;
            try
            {
                stream = await pooled.Connection.OpenStreamAsync(headers, cancellationToken).ConfigureAwait(false);
            }
            catch (Http2StreamException) when (attempt < 3)
            {
                continue;
            }
            catch (Http2StreamException ex)
            {
                throw new HboneException(HboneFailure.Protocol, $"could not open an HBONE stream to {target.HboneEndpoint}: {ex.Message}", ex);
            }

            Http2Response response;
            try
            {
                response = await stream.ReadResponseHeadersAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Http2StreamException ex) when (ex.Code == Http2ErrorCode.RefusedStream && attempt < 3)
            {
                continue;
            }
            catch (Exception ex) when (ex is Http2StreamException or IOException)
            {
                stream.Reset(Http2ErrorCode.Cancel);
                throw new HboneException(HboneFailure.Protocol, $"HBONE stream to {target.HboneEndpoint} failed before the response: {ex.Message}", ex);
            }
            catch
            {
                stream.Reset(Http2ErrorCode.Cancel);
                throw;
            }

            if (response.Status == 200)
            {
                return new HboneTunnel(stream, response, pooled.PeerIdentity);
            }
            stream.Reset(Http2ErrorCode.Cancel);
            throw response.Status == 401
                ? new HboneException(HboneFailure.Denied, $"peer {pooled.PeerIdentity} denied the connection to {target.Authority} (401: authorization policy)", status: 401)
                : new HboneException(HboneFailure.Upstream, $"peer {pooled.PeerIdentity} answered {response.Status} for {target.Authority}", status: response.Status);
        }
    }

    private async ValueTask<PooledConnection> AcquireAsync(PoolKey key, HboneTarget target, CancellationToken cancellationToken)
    {
        Task<PooledConnection> dial;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_entries.TryGetValue(key, out var entry))
            {
                entry = new Entry();
                _entries[key] = entry;
            }
            foreach (var c in entry.Connections)
            {
                if (c.Connection.CanOpenStream && c.Connection.ActiveStreams < _options.MaxStreamsPerConnection)
                {
                    return c;
                }
            }
            entry.Dialing ??= DialAndAddAsync(key, entry, target);
            dial = entry.Dialing;
        }
        return await dial.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<PooledConnection> DialAndAddAsync(PoolKey key, Entry entry, HboneTarget target)
    {
        // Called under _lock: yield so the dial (and the finally below) never completes before Dialing is assigned.
        await Task.Yield();
        try
        {
            var pooled = await DialAsync(target).ConfigureAwait(false);
            lock (_lock)
            {
                entry.Connections.Add(pooled);
            }
            _ = pooled.Connection.Completion.ContinueWith(
                (_, s) =>
                {
                    var (pool, k, e, p) = ((HbonePool, PoolKey, Entry, PooledConnection))s!;
                    pool.Remove(k, e, p);
                },
                (this, key, entry, pooled),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
            return pooled;
        }
        finally
        {
            lock (_lock)
            {
                entry.Dialing = null;
            }
        }
    }

    private void Remove(PoolKey key, Entry entry, PooledConnection pooled)
    {
        lock (_lock)
        {
            entry.Connections.Remove(pooled);
            if (entry.Connections.Count == 0 && entry.Dialing is null && _entries.TryGetValue(key, out var current) && current == entry)
            {
                _entries.Remove(key);
            }
        }
    }

    private async Task<PooledConnection> DialAsync(HboneTarget target)
    {
        WorkloadCertificate cert;
        try
        {
            cert = await _certificates.GetAsync(target.Source, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw new HboneException(HboneFailure.Identity, $"no certificate for source identity {target.Source}: {ex.Message}", ex);
        }

        var family = target.HboneEndpoint.AddressFamily;
        var socket = target.SocketFactory?.Invoke(family) ?? new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.NoDelay = true;
            if (target.SourceAddress is { } src && src.AddressFamily == family)
            {
                TryBind(socket, src);
            }
            using (var cts = new CancellationTokenSource(_options.ConnectTimeout))
            {
                try
                {
                    await socket.ConnectAsync(target.HboneEndpoint, cts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    throw new HboneException(HboneFailure.Timeout, $"connect to {target.HboneEndpoint} timed out after {_options.ConnectTimeout.TotalSeconds:0}s (is port 15008 reachable?)");
                }
                catch (SocketException ex)
                {
                    throw new HboneException(HboneFailure.Connect, $"connect to {target.HboneEndpoint} failed: {ex.SocketErrorCode}", ex);
                }
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var transport = new WriteCoalescingStream(socket);
        var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
        try
        {
            var options = MeshTls.ClientOptions(cert, target.ExpectedIdentities, _certificates.Issuer.TrustBundle);
            using var cts = new CancellationTokenSource(_options.HandshakeTimeout);
            await ssl.AuthenticateAsClientAsync(options, cts.Token).ConfigureAwait(false);
            // From here on every write comes from the HTTP/2 writer, which flushes after each batch.
            transport.Coalesce = true;
            if (ssl.NegotiatedApplicationProtocol != SslApplicationProtocol.Http2)
            {
                throw new HboneException(HboneFailure.Tls, $"peer {target.HboneEndpoint} did not negotiate ALPN h2");
            }
            var peer = MeshTls.PeerId(ssl) ?? throw new HboneException(HboneFailure.Tls, $"peer {target.HboneEndpoint} presented no SPIFFE identity");
            var connection = Http2Connection.CreateClient(ssl, _options.Http2, _logger);
            connection.Start();
            HboneLog.Connected(_logger, target.HboneEndpoint, target.Source, peer);
            return new PooledConnection(connection, peer);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException)
        {
            string reason = MeshTls.RejectionReason(ssl) ?? ex.GetBaseException().Message;
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new HboneException(HboneFailure.Tls, $"TLS handshake with {target.HboneEndpoint} failed (expected identity {string.Join(" or ", target.ExpectedIdentities)}): {reason}", ex);
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static void TryBind(Socket socket, IPAddress source)
    {
        try
        {
            socket.Bind(new IPEndPoint(source, 0));
        }
        catch (SocketException)
        {
            // Not a local address (e.g. shared mode with remote pod IPs): let the kernel choose.
        }
    }

    private void EvictIdle()
    {
        var now = Environment.TickCount64;
        var idle = (long)_options.IdleTimeout.TotalMilliseconds;
        List<Http2Connection>? close = null;
        lock (_lock)
        {
            foreach (var entry in _entries.Values)
            {
                foreach (var c in entry.Connections)
                {
                    if (c.Connection.ActiveStreams == 0 && now - c.Connection.LastActiveTicks >= idle)
                    {
                        (close ??= []).Add(c.Connection);
                    }
                }
            }
        }
        if (close is null)
        {
            return;
        }
        foreach (var c in close)
        {
            _ = c.ShutdownAsync().AsTask().ContinueWith(static (_, s) => ((Http2Connection)s!).Abort(), c, TaskScheduler.Default);
        }
    }

    /// <summary>Closes every pooled connection gracefully (GOAWAY) and then aborts whatever is left.</summary>
    public async ValueTask DisposeAsync()
    {
        List<Http2Connection> all = [];
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            foreach (var e in _entries.Values)
            {
                foreach (var c in e.Connections)
                {
                    all.Add(c.Connection);
                }
            }
            _entries.Clear();
        }
        await _idleTimer.DisposeAsync().ConfigureAwait(false);
        foreach (var c in all)
        {
            await c.DisposeAsync().ConfigureAwait(false);
        }
    }

    private readonly record struct PoolKey(string Source, string Expected, IPAddress? SourceAddress, IPEndPoint Endpoint);

    private sealed class Entry
    {
        public readonly List<PooledConnection> Connections = [];
        public Task<PooledConnection>? Dialing;
    }

    private sealed record PooledConnection(Http2Connection Connection, SpiffeId PeerIdentity);
}
