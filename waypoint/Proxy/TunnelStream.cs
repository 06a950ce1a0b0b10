using System.Buffers;
using System.IO.Pipelines;
using Ambient.Mesh.Http2;

namespace Ambient.Waypoint.Proxy;

/// <summary>
/// An outbound HBONE tunnel as the <see cref="Stream"/> <c>SocketsHttpHandler</c> speaks HTTP over: reads come from
/// the CONNECT stream's DATA pipe, writes go out as DATA frames. Disposing resets the stream (the HTTP connection
/// the handler pooled on it is gone), which the destination's ztunnel sees as the tunnel's end.
/// </summary>
internal sealed class TunnelStream(Http2Stream stream) : Stream
{
    private int _disposed;

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        ReadResult result;
        try
        {
            result = await stream.Input.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Http2StreamException ex)
        {
            throw new IOException($"HBONE tunnel failed: {ex.Message}", ex);
        }
        var data = result.Buffer;
        if (data.IsEmpty && result.IsCompleted)
        {
            stream.Input.AdvanceTo(data.End);
            return 0;
        }
        int n = (int)Math.Min(data.Length, buffer.Length);
        data.Slice(0, n).CopyTo(buffer.Span);
        stream.Input.AdvanceTo(data.GetPosition(n));
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            await stream.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Http2StreamException ex)
        {
            throw new IOException($"HBONE tunnel failed: {ex.Message}", ex);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous only");
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous only");
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            stream.Input.Complete();
            stream.Reset(Http2ErrorCode.Cancel);
        }
        base.Dispose(disposing);
    }
}
