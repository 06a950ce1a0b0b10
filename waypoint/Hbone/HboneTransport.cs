using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Identity;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Hbone;

/// <summary>
/// Kestrel's transport for <see cref="HboneEndPoint"/>s: listens for mTLS on 15008, serves HTTP/2 CONNECT with the
/// mesh's own HTTP/2 code, checks each CONNECT (<see cref="TunnelAdmission"/>), answers 200, and hands the stream to
/// Kestrel as one connection. Other endpoints (plain TCP admin ports) are left to Kestrel's socket transport.
/// </summary>
internal sealed partial class HboneTransport(
    CertificateManager certificates,
    WaypointIdentity identity,
    TunnelAdmission admission,
    Proxy.TcpProxy tcp,
    ILoggerFactory loggers,
    Hosting.WaypointOptions options) : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);
    private readonly ILogger _logger = loggers.CreateLogger("hbone");
    private readonly CertificateManager _certificates = certificates;
    private readonly WaypointIdentity _identity = identity;
    private readonly TunnelAdmission _admission = admission;
    private readonly Proxy.TcpProxy _tcp = tcp;
    private readonly TimeSpan _detectionTimeout = options.ProtocolDetectionTimeout;

    private readonly Dictionary<IPEndPoint, Acceptor> _acceptors = [];

    public bool CanBind(EndPoint endpoint) => endpoint is HboneEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken)
    {
        var ep = (HboneEndPoint)endpoint;
        Acceptor acceptor;
        lock (_acceptors)
        {
            // The HTTP/1.1 and the HTTP/2 endpoint of one address share its socket.
            if (!_acceptors.TryGetValue(ep.Address, out acceptor!))
            {
                acceptor = new Acceptor(this, Listen(ep.Address));
                _acceptors[ep.Address] = acceptor;
                acceptor.Start();
            }
        }
        ep.Bound = acceptor.Bound;
        return ValueTask.FromResult<IConnectionListener>(new Listener(acceptor, ep));
    }

    private static Socket Listen(IPEndPoint address)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(address);
            socket.Listen(1024);
            return socket;
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new InvalidOperationException($"cannot listen for HBONE on {address}: {ex.SocketErrorCode}", ex);
        }
    }

    /// <summary>One Kestrel endpoint (HTTP/1.1 or HTTP/2) of a shared HBONE socket.</summary>
    private sealed class Listener(Acceptor acceptor, HboneEndPoint endpoint) : IConnectionListener
    {
        public EndPoint EndPoint => endpoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                return await acceptor.Channel(endpoint.Http2).Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                return null;
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => acceptor.StopAsync();

        public ValueTask DisposeAsync() => acceptor.DisposeAsync();
    }

    /// <summary>The mTLS socket: accepts, serves HTTP/2 CONNECT, admits tunnels, sorts them by HTTP version.</summary>
    private sealed class Acceptor(HboneTransport transport, Socket socket) : IAsyncDisposable
    {
        private readonly Channel<ConnectionContext> _http1 = System.Threading.Channels.Channel.CreateUnbounded<ConnectionContext>();
        private readonly Channel<ConnectionContext> _http2 = System.Threading.Channels.Channel.CreateUnbounded<ConnectionContext>();
        private readonly CancellationTokenSource _stopping = new();
        private readonly List<Task> _connections = [];
        private Task? _acceptLoop;
        private int _disposed;

        public IPEndPoint Bound { get; } = (IPEndPoint)socket.LocalEndPoint!;

        public Channel<ConnectionContext> Channel(bool http2) => http2 ? _http2 : _http1;

        public void Start() => _acceptLoop = AcceptLoopAsync();

        private async Task AcceptLoopAsync()
        {
            while (!_stopping.IsCancellationRequested)
            {
                Socket accepted;
                try
                {
                    accepted = await socket.AcceptAsync(_stopping.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
                {
                    break;
                }
                catch (SocketException ex)
                {
                    LogAcceptFailed(transport._logger, ex.SocketErrorCode);
                    continue;
                }
                var task = ServeAsync(accepted);
                lock (_connections)
                {
                    _connections.RemoveAll(static t => t.IsCompleted);
                    _connections.Add(task);
                }
            }
        }

        private async Task ServeAsync(Socket accepted)
        {
            try
            {
                WorkloadCertificate cert;
                using (var timeout = new CancellationTokenSource(HandshakeTimeout))
                {
                    cert = await transport._certificates.GetAsync(transport._identity.Id, timeout.Token).ConfigureAwait(false);
                }
                var trust = new X509TrustBundle(transport._certificates.Issuer.TrustBundle, transport._identity.Id.TrustDomain);
                string? refusal = await HboneServer.ServeAsync(
                    accepted, cert, trust, new Http2Options(), HandshakeTimeout, OnStreamAsync, null, transport._logger, _stopping.Token).ConfigureAwait(false);
                if (refusal is not null)
                {
                    transport._admission.Refused("tls_handshake", refusal);
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                LogConnectionFailed(transport._logger, ex.Message);
                accepted.Dispose();
            }
        }

        private async Task OnStreamAsync(HboneInboundRequest request)
        {
            var stream = request.Stream;
            var decision = transport._admission.Admit(request);
            if (decision.Tunnel is not { } tunnel)
            {
                try
                {
                    await stream.SendResponseHeadersAsync(decision.Status, null, endStream: true, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or Http2StreamException)
                {
                }
                stream.Reset(Http2ErrorCode.NoError);
                return;
            }
            var declared = Proxy.PortProtocol.Of(tunnel.Service, tunnel.Authority.Port);
            if (declared == Proxy.DeclaredProtocol.Tcp)
            {
                // A port declared non-HTTP is relayed as bytes with L4 policy, never parsed.
                await transport._tcp.ServeAsync(stream, tunnel).ConfigureAwait(false);
                return;
            }
            Proxy.SniffedProtocol sniffed;
            try
            {
                await stream.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None).ConfigureAwait(false);
                sniffed = declared == Proxy.DeclaredProtocol.Http
                    ? await Proxy.ProtocolSniffer.DetectAsync(stream.Input, HandshakeTimeout, declaredHttp: true).ConfigureAwait(false)
                    : await Proxy.ProtocolSniffer.DetectAsync(stream.Input, transport._detectionTimeout, declaredHttp: false).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or Http2StreamException or OperationCanceledException)
            {
                stream.Reset(Http2ErrorCode.Cancel);
                return;
            }
            if (sniffed == Proxy.SniffedProtocol.Tcp)
            {
                // An undeclared port whose first bytes are not HTTP (or that stayed silent): TCP with L4 policy.
                await transport._tcp.ServeAsync(stream, tunnel, answered: true).ConfigureAwait(false);
                return;
            }
            bool http2 = sniffed == Proxy.SniffedProtocol.Http2;
            var connection = new HboneConnection(stream, tunnel, request.LocalEndPoint);
            if (!Channel(http2).Writer.TryWrite(connection))
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }

        /// <summary>Kestrel stops accepting: close the socket, GOAWAY to every HBONE client (streams in flight finish).</summary>
        public async ValueTask StopAsync()
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }
            await _stopping.CancelAsync().ConfigureAwait(false);
            socket.Dispose();
            if (_acceptLoop is not null)
            {
                await _acceptLoop.ConfigureAwait(false);
            }
            _http1.Writer.TryComplete();
            _http2.Writer.TryComplete();
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync().ConfigureAwait(false);
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }
            Task[] open;
            lock (_connections)
            {
                open = [.. _connections];
            }
            try
            {
                await Task.WhenAll(open).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
            foreach (var channel in new[] { _http1, _http2 })
            {
                while (channel.Reader.TryRead(out var left))
                {
                    await left.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "HBONE accept failed: {Error}")]
    private static partial void LogAcceptFailed(ILogger logger, System.Net.Sockets.SocketError error);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "HBONE connection failed: {Error}")]
    private static partial void LogConnectionFailed(ILogger logger, string error);
}
