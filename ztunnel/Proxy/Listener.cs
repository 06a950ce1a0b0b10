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
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public Listener(string name, Socket listening, Func<Socket, Task> handler, ILogger logger)
    {
        Name = name;
        _socket = listening;
        _handler = handler;
        _logger = logger;
        LocalEndPoint = listening.LocalEndPoint!;
    }

    public string Name { get; }

    /// <summary>The bound address (an <see cref="IPEndPoint"/>, or a unix socket path).</summary>
    public EndPoint LocalEndPoint { get; }

    public IPEndPoint EndPoint => (IPEndPoint)LocalEndPoint;

    /// <summary>Creates, binds and listens (with SO_REUSEADDR so a restarted agent rebinds at once).</summary>
    public static Socket Bind(IPEndPoint endpoint, Func<AddressFamily, Socket>? create = null, bool transparent = false)
    {
        var socket = create?.Invoke(endpoint.AddressFamily) ?? new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
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
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

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
                _logger.LogWarning("{Listener} accept failed: {Error}", Name, ex.SocketErrorCode);
                await Task.Delay(50).ConfigureAwait(false);
                continue;
            }
            _ = RunHandlerAsync(accepted);
        }
    }

    private async Task RunHandlerAsync(Socket accepted)
    {
        try
        {
            await _handler(accepted).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "{Listener} connection handler failed", Name);
            accepted.Dispose();
        }
    }

    /// <summary>Stops accepting; already accepted connections carry on.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
