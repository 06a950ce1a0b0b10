using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// The one accept loop of the agent (proxy listeners, HTTP ports, the CNI socket): each accepted connection is handed to its handler on its own task; a handler's failure is
/// logged and never stops the loop. Stopping closes the listening socket (no new connections) and leaves accepted
/// connections to the drain.
/// </summary>
internal sealed class Listener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Func<Socket, Task> _handler;
    private readonly ILogger _logger;
    private readonly ConnectionTracker? _drain;
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    /// <param name="drain">The proxy listeners' tracker: the agent's drain waits for handlers still running.</param>
    public Listener(string name, Socket listening, Func<Socket, Task> handler, ILogger logger, ConnectionTracker? drain = null)
    {
        Name = name;
        _socket = listening;
        _handler = handler;
        _logger = logger;
        _drain = drain;
        LocalEndPoint = listening.LocalEndPoint!;
    }

    public string Name { get; }

    /// <summary>The bound address (an <see cref="IPEndPoint"/>, or a unix socket path).</summary>
    public EndPoint LocalEndPoint { get; }

    public IPEndPoint EndPoint => (IPEndPoint)LocalEndPoint;

    /// <summary>The listening socket, for handing it to a successor agent (InPod/ListenerHandover.cs).</summary>
    public Socket Socket => _socket;

    /// <summary>
    /// Creates, binds and listens, exclusively: SO_REUSEADDR (a restarted agent rebinds at once despite TIME_WAIT) but
    /// never SO_REUSEPORT, so an address another process listens on fails with AddressAlreadyInUse instead of being
    /// shared by accident. A deliberate hand-over from an old agent to a new one (issue 12) is a separate design: it
    /// will pass the listening sockets themselves, or opt in explicitly, and never go through this method.
    /// </summary>
    public static Socket Bind(IPEndPoint endpoint, Func<AddressFamily, Socket>? create = null, bool transparent = false)
    {
        Socket? owned = create is null ? new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) : create(endpoint.AddressFamily);
        try
        {
            Socket socket = owned;
            Sockets.SocketOptions.SetReuseAddressOnly(socket);
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }
            if (transparent)
            {
                Sockets.SocketOptions.SetTransparent(socket);
            }
            socket.Bind(endpoint);
            socket.Listen(1024);
            owned = null;
            return socket;
        }
        finally
        {
            owned?.Dispose();
        }
    }

    /// <summary>
    /// <see cref="Bind"/> for one of the agent's named ports; a failure becomes an <see cref="InvalidOperationException"/>
    /// whose message says which listener, which address and what to do about it.
    /// </summary>
    public static Socket BindNamed(string name, IPEndPoint endpoint)
    {
        try
        {
            return Bind(endpoint);
        }
        catch (SocketException ex)
        {
            throw new InvalidOperationException(BindError(name, endpoint, ex.SocketErrorCode), ex);
        }
    }

    internal static string BindError(string name, IPEndPoint endpoint, SocketError error) => error switch
    {
        SocketError.AddressAlreadyInUse =>
            $"cannot listen on {endpoint} for {name}: the address is already in use (another ztunnel running?)",
        SocketError.AddressNotAvailable =>
            $"cannot listen on {endpoint} for {name}: {endpoint.Address} is not an address of this host",
        SocketError.AccessDenied =>
            $"cannot listen on {endpoint} for {name}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
        _ => $"cannot listen on {endpoint} for {name}: {error}",
    };

    public void Start() => _loop = Task.Run(AcceptLoopAsync);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket accepted;
            try
            {
                accepted = await _socket.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                // EMFILE and friends: back off briefly instead of spinning.
                ProxyLog.AcceptFailed(_logger, Name, ex.SocketErrorCode);
                await Task.Delay(50).ConfigureAwait(false);
                continue;
            }
            _ = RunHandlerAsync(accepted);
        }
    }

    private async Task RunHandlerAsync(Socket accepted)
    {
        _drain?.HandlerStarted();
        try
        {
            await _handler(accepted).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ProxyLog.HandlerFailed(_logger, ex, Name);
            accepted.Dispose();
        }
        finally
        {
            _drain?.HandlerEnded();
        }
    }

    /// <summary>
    /// Stops accepting; already accepted connections carry on. Connections the kernel has completed but nobody has
    /// accepted yet (the listen backlog) are accepted and handed to the handler first: closing a listening socket
    /// resets every connection still in its backlog. What completes its handshake between that last look and the
    /// close is still reset by the kernel; only passing the listening socket to a successor avoids that (issue 12).
    /// </summary>
    public async Task StopAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
        AcceptBacklog();
        _socket.Dispose();
    }

    private void AcceptBacklog()
    {
        if (_loop is null)
        {
            return; // never started: nothing was ever accepted from it
        }
        try
        {
            _socket.Blocking = false;
            while (true)
            {
                _ = RunHandlerAsync(_socket.Accept());
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // WouldBlock: the backlog is empty.
        }
    }

    /// <summary>
    /// Stops accepting without touching the backlog, and closes this process's descriptor only: a successor holds the
    /// same listening socket (passed over a unix socket) and accepts what is queued and what comes next, so nothing is
    /// reset. Unlike <see cref="StopAsync"/>, connections still in the backlog are left to the successor.
    /// </summary>
    public async Task ReleaseToSuccessorAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
        Sockets.UnixRights.MarkShared(_socket);
        _socket.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
