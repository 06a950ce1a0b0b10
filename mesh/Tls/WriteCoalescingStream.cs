using System.Buffers;
using System.Net.Sockets;

namespace Ambient.Mesh.Tls;

/// <summary>
/// The socket under an SslStream. SslStream encrypts a large write as a series of 16 KiB TLS records and hands
/// each to its inner stream separately, i.e. one send() per record. Once <see cref="Coalesce"/> is on (after the
/// handshake: the handshake's flights must go out as they are written), writes are gathered and go out in one
/// send() on <see cref="FlushAsync"/>, which the HTTP/2 writer issues after every batch of frames. Writes past
/// the buffer's size are sent at once, so memory stays bounded.
/// </summary>
public sealed class WriteCoalescingStream(Socket socket) : Stream
{
    private const int BufferSize = 128 * 1024;
    private readonly NetworkStream _inner = new(socket, ownsSocket: true);
    private byte[]? _buffer;
    private int _count;

    /// <summary>Gather writes until the next flush (turn on after the TLS handshake).</summary>
    public bool Coalesce { get; set; }

    public Socket Socket => socket;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Coalesce)
        {
            await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }
        _buffer ??= ArrayPool<byte>.Shared.Rent(BufferSize);
        if (_count + buffer.Length > _buffer.Length)
        {
            await SendBufferedAsync(cancellationToken).ConfigureAwait(false);
            if (buffer.Length > BufferSize)
            {
                await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
                return;
            }
            _buffer ??= ArrayPool<byte>.Shared.Rent(BufferSize);
        }
        buffer.Span.CopyTo(_buffer.AsSpan(_count));
        _count += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        SendBufferedAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        _inner.Write(buffer, offset, count);
    }

    public override async Task FlushAsync(CancellationToken cancellationToken) =>
        await SendBufferedAsync(cancellationToken).ConfigureAwait(false);

    public override void Flush() => SendBufferedAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();

    private async ValueTask SendBufferedAsync(CancellationToken cancellationToken)
    {
        if (_count == 0 || _buffer is null)
        {
            return;
        }
        int n = _count;
        _count = 0;
        await _inner.WriteAsync(_buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        if (_count == 0)
        {
            // Idle connections hold no buffer.
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }
        }
        base.Dispose(disposing);
    }
}
