using System.Net;
using System.Net.Sockets;

namespace Ambient.Ztunnel.Tests.Support;

/// <summary>
/// A TCP echo server standing in for an application: echoes every byte, and half-closes its side when the client
/// half-closes. <see cref="ReplyOnEof"/> switches it to "read everything, then answer once" to test half-close.
/// </summary>
internal sealed class EchoServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _accepted;

    public EchoServer(IPAddress address, int port = 0)
    {
        _listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        // SO_REUSEADDR only: .NET's ReuseAddress also sets SO_REUSEPORT on Linux, which would let the echo server
        // silently share a fixed port with another process instead of failing.
        _listener.SetRawSocketOption(1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */, BitConverter.GetBytes(1));
        _listener.Bind(new IPEndPoint(address, port));
        _listener.Listen(512);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _loop = Task.Run(AcceptAsync);
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>When set, the server reads to EOF and then sends this (prefixed with the byte count it read).</summary>
    public string? ReplyOnEof { get; set; }

    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>When a received chunk contains this byte, the server resets the connection (SO_LINGER 0).</summary>
    public byte? ResetOn { get; set; }

    /// <summary>Source addresses the server saw, in order.</summary>
    public List<IPEndPoint> Peers { get; } = [];

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            Interlocked.Increment(ref _accepted);
            lock (Peers)
            {
                Peers.Add((IPEndPoint)s.RemoteEndPoint!);
            }
            _ = ServeAsync(s);
        }
    }

    private async Task ServeAsync(Socket s)
    {
        using (s)
        {
            var buf = new byte[64 * 1024];
            long total = 0;
            try
            {
                while (true)
                {
                    int n = await s.ReceiveAsync(buf, SocketFlags.None);
                    if (n == 0)
                    {
                        if (ReplyOnEof is { } reply)
                        {
                            await s.SendAsync(System.Text.Encoding.ASCII.GetBytes($"{total}:{reply}"), SocketFlags.None);
                        }
                        s.Shutdown(SocketShutdown.Send);
                        // Wait for the client's close so our FIN is not followed by a reset.
                        await s.ReceiveAsync(buf.AsMemory(), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
                        return;
                    }
                    total += n;
                    if (ResetOn is { } r && buf.AsSpan(0, n).IndexOf(r) >= 0)
                    {
                        s.LingerState = new LingerOption(true, 0);
                        s.Close();
                        return;
                    }
                    if (ReplyOnEof is null)
                    {
                        await s.SendAsync(buf.AsMemory(0, n), SocketFlags.None);
                    }
                }
            }
            catch (Exception)
            {
                // Client reset or test over.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _loop.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        _stop.Dispose();
    }
}
