using System.Net;
using System.Net.Sockets;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Waypoint.Tests.Support;

/// <summary>A raw TCP server on a pod's address (port 0) that runs <c>serve</c> for each accepted connection.</summary>
internal sealed class TcpServer : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);
    private readonly Socket _listener;
    private readonly Func<Socket, Task> _serve;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _accepted;

    private TcpServer(Socket listener, Func<Socket, Task> serve)
    {
        _listener = listener;
        _serve = serve;
        _loop = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    public int Accepted => Volatile.Read(ref _accepted);

    public static TcpServer Start(IPAddress address, Func<Socket, Task> serve)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(TestAddresses.Loopback(new IPEndPoint(address, 0)));
            listener.Listen(16);
            return new TcpServer(listener, serve);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>Echoes until the client half-closes, then closes its own side.</summary>
    public static TcpServer Echo(IPAddress address) => Start(address, async s =>
    {
        var buffer = new byte[16384];
        while (true)
        {
            int n = await s.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0)
            {
                s.Shutdown(SocketShutdown.Send);
                return;
            }
            await s.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
        }
    });

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var s = await _listener.AcceptAsync(_stop.Token);
                Interlocked.Increment(ref _accepted);
                _ = ServeOneAsync(s);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task ServeOneAsync(Socket s)
    {
        using (s)
        {
            try
            {
                await _serve(s).WaitAsync(Timeout);
            }
            catch (Exception ex) when (ex is SocketException or TimeoutException or IOException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _loop.WaitAsync(Timeout);
        _stop.Dispose();
    }
}
