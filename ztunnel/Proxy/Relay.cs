using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Ambient.Mesh.Http2;
using Ambient.Ztunnel.Telemetry;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// The tunnel copy loops: TCP to TCP and TCP to an HBONE stream, both directions at once. A FIN on one side
/// becomes a half-close on the other (shutdown(SHUT_WR) / END_STREAM); a reset becomes a reset
/// (RST / RST_STREAM CONNECT_ERROR, RFC 9113 section 8.5). Buffers are rented only once data is waiting and
/// returned after any read that drained the socket, so an idle tunnel holds no buffer.
/// </summary>
/// <remarks>
/// One object per relayed connection, holding the two direction loops' shared state; when both have ended it calls
/// the owner's completion once. Nobody awaits a relay: an open tunnel is these two loops and nothing else (no
/// chain of awaiting handlers, no linked cancellation), which is most of what an idle tunnel costs in memory.
/// </remarks>
internal sealed class Relay
{
    /// <summary>Large enough that one read usually drains what the kernel queued at 10 Gbit/s.</summary>
    internal const int BufferSize = 64 * 1024;

    private readonly Socket _socket;
    private readonly Http2Stream? _stream;
    private readonly Socket? _upstream;
    private readonly ConnectionRecord _record;
    private readonly bool _socketIsClient;
    private readonly Action<string?> _onFinished;
    private int _pending = 2;
    private string? _error;
    private int _killed;
    private volatile bool _closedByAgent;

    private Relay(Socket socket, Http2Stream? stream, Socket? upstream, ConnectionRecord record, bool socketIsClient, Action<string?> onFinished)
    {
        _socket = socket;
        _stream = stream;
        _upstream = upstream;
        _record = record;
        _socketIsClient = socketIsClient;
        _onFinished = onFinished;
        // Sends are tried synchronously first (SendAsync below): a non-blocking socket returns what it took at once
        // instead of parking the thread. Asynchronous operations are unaffected.
        TryNonBlocking(socket);
        if (upstream is not null)
        {
            TryNonBlocking(upstream);
        }
    }

    private static void TryNonBlocking(Socket socket)
    {
        try
        {
            socket.Blocking = false;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed: the loops will find out and end.
        }
    }

    /// <summary>
    /// Copies <paramref name="socket"/> &lt;-&gt; <paramref name="stream"/> until both directions end, then closes the
    /// socket and calls <paramref name="onFinished"/> with the first error (null for a clean close). Returns at once.
    /// </summary>
    /// <param name="socketIsClient">True when the socket is the connection's client (outbound), false when it is the upstream (inbound).</param>
    public static Relay StartSocketToStream(Socket socket, Http2Stream stream, ConnectionRecord record, bool socketIsClient, Action<string?> onFinished)
    {
        var relay = new Relay(socket, stream, null, record, socketIsClient, onFinished);
        _ = relay.PumpAsync(socket, new StreamSink(stream), towardsDestination: socketIsClient);
        _ = relay.StreamIntoSocketAsync();
        return relay;
    }

    /// <summary>Copies client &lt;-&gt; upstream until both directions end, then closes both and calls <paramref name="onFinished"/> once.</summary>
    public static Relay StartSocketToSocket(Socket client, Socket upstream, ConnectionRecord record, Action<string?> onFinished)
    {
        var relay = new Relay(client, null, upstream, record, socketIsClient: true, onFinished);
        _ = relay.PumpAsync(client, new SocketSink(upstream), towardsDestination: true);
        _ = relay.PumpAsync(upstream, new SocketSink(client), towardsDestination: false);
        return relay;
    }

    /// <summary>The same as a task (benchmarks and tests): completes with the first error, or null.</summary>
    public static Task<string?> SocketToSocketAsync(Socket client, Socket upstream, ConnectionRecord record, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var relay = StartSocketToSocket(client, upstream, record, error => done.TrySetResult(error));
        var registration = cancellationToken.Register(static r => ((Relay)r!).CloseByAgent(), relay);
        done.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        return done.Task;
    }

    /// <summary>The agent closes the connection (policy change, drain deadline): both sides are reset.</summary>
    public void CloseByAgent()
    {
        _closedByAgent = true;
        Kill(Http2ErrorCode.Cancel);
    }

    /// <summary>Resets both sides, once: the loops then end with errors and the relay finishes.</summary>
    private void Kill(Http2ErrorCode streamCode)
    {
        if (Interlocked.Exchange(ref _killed, 1) != 0)
        {
            return;
        }

        _stream?.Reset(streamCode);
        Abort(_socket);
        if (_upstream is not null)
        {
            Abort(_upstream);
        }
    }

    /// <summary>One direction ended: a failure resets the other direction; the second end finishes the relay.</summary>
    private void DirectionEnded(string? error)
    {
        if (error is not null && Interlocked.CompareExchange(ref _error, error, null) is null)
        {
            // One side was reset: the other must not wait for a FIN that will never come.
            Kill(Http2ErrorCode.ConnectError);
        }

        if (Interlocked.Decrement(ref _pending) == 0)
        {
            // The relay owns its sockets (the HBONE stream is closed by the two directions' ends or the reset).
            _socket.Dispose();
            _upstream?.Dispose();
            _onFinished(_closedByAgent ? "connection closed by the agent" : Volatile.Read(ref _error));
        }
    }

    /// <summary>Where bytes read from a socket go: another socket, or an HBONE stream.</summary>
    private interface ISink
    {
        ValueTask WriteAsync(ReadOnlyMemory<byte> data);

        /// <summary>Passes on the source's FIN: shutdown(SHUT_WR), or END_STREAM.</summary>
        ValueTask CompleteAsync();
    }

    private readonly struct SocketSink(Socket socket) : ISink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<byte> data) => SendAsync(socket, data);

        public ValueTask CompleteAsync()
        {
            SafeShutdownSend(socket);
            return ValueTask.CompletedTask;
        }
    }

    private readonly struct StreamSink(Http2Stream stream) : ISink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<byte> data) => stream.WriteAsync(data, CancellationToken.None);

        public ValueTask CompleteAsync() => stream.CompleteWritesAsync(CancellationToken.None);
    }

    /// <summary>
    /// Socket to sink until EOF (then the FIN is passed on) or an error. Generic over a struct sink so the loop is
    /// specialised per destination kind: no interface dispatch or allocation per chunk.
    /// </summary>
    private async Task PumpAsync<TSink>(Socket from, TSink to, bool towardsDestination)
        where TSink : struct, ISink
    {
        byte[]? buffer = null;
        string? error = null;
        try
        {
            while (true)
            {
                if (buffer is null)
                {
                    // Zero-byte receive: wait for data without holding memory.
                    await from.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                    buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                }
                int n = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    await to.CompleteAsync().ConfigureAwait(false);
                    break;
                }
                await to.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                Count(_record, towardsDestination, n);
                if (n < buffer.Length)
                {
                    // A short read drained the socket: the flow is idle or interactive, so give the buffer back and
                    // wait without memory. A full read means more is queued: keep reading into the same buffer
                    // (no extra syscall per chunk to ask).
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
            }
        }
        catch (Exception ex)
        {
            // Whatever ended the loop, the relay must finish: nobody awaits this task.
            error = Describe(ex);
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        DirectionEnded(error);
    }

    /// <summary>HBONE stream to socket until END_STREAM (then shutdown(SHUT_WR)) or an error.</summary>
    private async Task StreamIntoSocketAsync()
    {
        PipeReader input = _stream!.Input;
        Socket to = _socket;
        string? error = null;
        try
        {
            while (true)
            {
                ReadResult result = await input.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                if (buffer.IsSingleSegment)
                {
                    if (!buffer.IsEmpty)
                    {
                        await SendAsync(to, buffer.First).ConfigureAwait(false);
                    }
                }
                else
                {
                    await SendSegmentsAsync(to, buffer).ConfigureAwait(false);
                }
                Count(_record, !_socketIsClient, (int)buffer.Length);
                input.AdvanceTo(buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    SafeShutdownSend(to);
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            error = Describe(ex);
        }

        DirectionEnded(error);
    }

    private static async ValueTask SendSegmentsAsync(Socket to, ReadOnlySequence<byte> buffer)
    {
        foreach (ReadOnlyMemory<byte> segment in buffer)
        {
            await SendAsync(to, segment).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends all of <paramref name="data"/>: first straight away (the relay's sockets are non-blocking), and only
    /// what the kernel did not take asynchronously. Interactive traffic, which almost always fits the socket's send
    /// buffer, then needs no async send machinery at all: no state per send, and no per-socket send arguments
    /// (about 300 bytes that a socket keeps once it has sent asynchronously).
    /// </summary>
    internal static ValueTask SendAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        int sent = socket.Send(data.Span, SocketFlags.None, out SocketError error);
        if (error == SocketError.Success && sent == data.Length)
        {
            return ValueTask.CompletedTask;
        }

        if (error is not (SocketError.Success or SocketError.WouldBlock))
        {
            return ValueTask.FromException(new SocketException((int)error));
        }

        return SendRestAsync(socket, data[Math.Max(sent, 0)..]);
    }

    private static async ValueTask SendRestAsync(Socket socket, ReadOnlyMemory<byte> rest)
    {
        while (!rest.IsEmpty)
        {
            int n = await socket.SendAsync(rest, SocketFlags.None).ConfigureAwait(false);
            rest = rest[n..];
        }
    }

    private static void Count(ConnectionRecord record, bool towardsDestination, int n)
    {
        if (towardsDestination)
        {
            record.AddReceived(n);
        }
        else
        {
            record.AddSent(n);
        }
    }

    private static void SafeShutdownSend(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already gone: nothing left to half-close.
        }
    }

    /// <summary>Closes with SO_LINGER 0 so the peer sees a reset rather than a clean FIN.</summary>
    public static void Abort(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        socket.Dispose();
    }

    internal static string Describe(Exception ex) => ex switch
    {
        SocketException se => se.SocketErrorCode switch
        {
            SocketError.ConnectionReset => "connection reset by peer",
            SocketError.ConnectionAborted or SocketError.OperationAborted => "connection aborted",
            SocketError.Shutdown => "connection shut down",
            _ => $"socket error: {se.SocketErrorCode}",
        },
        Http2StreamException h => h.RemoteReset ? $"stream reset by peer ({h.Code})" : $"tunnel lost: {h.Message}",
        ObjectDisposedException => "connection aborted",
        _ => ex.GetBaseException().Message,
    };
}
