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
internal static class Relay
{
    /// <summary>Large enough that one read usually drains what the kernel queued at 10 Gbit/s.</summary>
    internal const int BufferSize = 64 * 1024;

    /// <summary>Copies client &lt;-&gt; upstream until both directions end; returns the first error, if any.</summary>
    public static async Task<string?> SocketToSocketAsync(Socket client, Socket upstream, ConnectionRecord record, CancellationToken cancellationToken)
    {
        using var abort = cancellationToken.Register(static s =>
        {
            var (a, b) = ((Socket, Socket))s!;
            Abort(a);
            Abort(b);
        }, (client, upstream));
        var up = PumpAsync(client, new SocketSink(upstream), record, towardsDestination: true);
        var down = PumpAsync(upstream, new SocketSink(client), record, towardsDestination: false);
        var first = await Task.WhenAny(up, down).ConfigureAwait(false);
        if (first.Result is not null)
        {
            // One side was reset: the other must not wait for a FIN that will never come.
            Abort(client);
            Abort(upstream);
        }
        var other = first == up ? down : up;
        var otherError = await other.ConfigureAwait(false);
        return cancellationToken.IsCancellationRequested ? "connection closed by the agent" : first.Result ?? otherError;
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
        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data) => await socket.SendAsync(data, SocketFlags.None).ConfigureAwait(false);

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
    /// Socket to sink until EOF (then the FIN is passed on) or an error (returned). Generic over a struct sink so the
    /// JIT specialises the loop per destination kind: no interface dispatch or allocation per chunk.
    /// </summary>
    private static async Task<string?> PumpAsync<TSink>(Socket from, TSink to, ConnectionRecord record, bool towardsDestination)
        where TSink : struct, ISink
    {
        byte[]? buffer = null;
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
                    return null;
                }
                await to.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                Count(record, towardsDestination, n);
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
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or OperationCanceledException)
        {
            return Describe(ex);
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Copies client socket &lt;-&gt; HBONE stream until both directions end; returns the first error, if any.</summary>
    /// <param name="socketIsClient">True when the socket is the connection's client (outbound), false when it is the upstream (inbound).</param>
    public static async Task<string?> SocketToStreamAsync(Socket socket, Http2Stream stream, ConnectionRecord record, bool socketIsClient, CancellationToken cancellationToken)
    {
        using var abort = cancellationToken.Register(static s =>
        {
            var (sock, st) = ((Socket, Http2Stream))s!;
            st.Reset(Http2ErrorCode.Cancel);
            Abort(sock);
        }, (socket, stream));
        var toStream = PumpAsync(socket, new StreamSink(stream), record, towardsDestination: socketIsClient);
        var toSocket = StreamIntoSocketAsync(stream, socket, record, socketIsClient);
        var first = await Task.WhenAny(toStream, toSocket).ConfigureAwait(false);
        if (first.Result is not null)
        {
            stream.Reset(Http2ErrorCode.ConnectError);
            Abort(socket);
        }
        var other = first == toStream ? toSocket : toStream;
        var otherError = await other.ConfigureAwait(false);
        return cancellationToken.IsCancellationRequested ? "connection closed by the agent" : first.Result ?? otherError;
    }

    private static async Task<string?> StreamIntoSocketAsync(Http2Stream from, Socket to, ConnectionRecord record, bool socketIsClient)
    {
        PipeReader input = from.Input;
        try
        {
            while (true)
            {
                ReadResult result = await input.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                foreach (ReadOnlyMemory<byte> segment in buffer)
                {
                    await to.SendAsync(segment, SocketFlags.None).ConfigureAwait(false);
                    Count(record, !socketIsClient, segment.Length);
                }
                input.AdvanceTo(buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    SafeShutdownSend(to);
                    return null;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            return Describe(ex);
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
