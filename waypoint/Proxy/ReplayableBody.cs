namespace Ambient.Waypoint.Proxy;

/// <summary>
/// A request body that streams to the upstream as it arrives while keeping a copy of the first
/// <see cref="Limit"/> bytes, so it can be sent again (a retry, Envoy's <c>per_request_buffer_limit</c>) or to a mirror
/// once complete. Nothing is read ahead: a gRPC stream that waits for an answer before sending more is never held up.
/// Each reader (<see cref="OpenReader"/>) replays the kept bytes, then reads on from the client; opening a new one
/// detaches the previous (the failed attempt's copy loop), and one client read is in progress at a time. Past the
/// limit the copy is dropped and the body can no longer be replayed (<see cref="CanReplay"/>).
/// </summary>
internal sealed class ReplayableBody(Stream inner, int limit) : IDisposable
{
    // Never disposed: it allocates no wait handle, and a detached reader may still release it after the request ends.
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2213", Justification = "no wait handle is ever created; see above")]
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly TaskCompletionSource<bool> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[]? _kept;
    private long _length;
    private int _generation;

    public int Limit => limit;

    /// <summary>The client sent the whole body.</summary>
    public bool Completed { get; private set; }

    /// <summary>False once the body went past <see cref="Limit"/>.</summary>
    public bool CanReplay { get; private set; } = true;

    /// <summary>Bytes read from the client so far.</summary>
    public long Length => Volatile.Read(ref _length);

    /// <summary>True when the whole body arrived within the limit; false when it outgrew it or the request ended first.</summary>
    public Task<bool> Done => _done.Task;

    /// <summary>The whole body, once <see cref="Done"/> is true.</summary>
    public ReadOnlyMemory<byte> Kept => Completed && CanReplay ? (_kept ?? []).AsMemory(0, (int)_length) : throw new InvalidOperationException("the body is not complete within the limit");

    public Stream OpenReader() => new Reader(this, Interlocked.Increment(ref _generation));

    /// <summary>The request is over: whoever waits for a complete body stops waiting.</summary>
    public void Dispose()
    {
        _done.TrySetResult(false);
    }

    private async ValueTask<int> ReadAsync(Reader reader, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (reader.Generation != Volatile.Read(ref _generation))
        {
            throw new IOException("the request body was handed to a newer attempt");
        }
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (reader.Offset < _length)
            {
                if (_kept is null || !CanReplay)
                {
                    throw new IOException($"the request body went past the {limit} bytes kept for replay");
                }
                int n = (int)Math.Min(buffer.Length, _length - reader.Offset);
                _kept.AsMemory((int)reader.Offset, n).CopyTo(buffer);
                reader.Offset += n;
                return n;
            }
            if (Completed)
            {
                return 0;
            }
            int read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                // A zero-byte read only waits for data; a real one returning 0 is the end of the body.
                if (buffer.Length > 0)
                {
                    Completed = true;
                    _done.TrySetResult(CanReplay);
                }
                return 0;
            }
            Keep(buffer.Span[..read]);
            reader.Offset += read;
            return read;
        }
        finally
        {
            _gate.Release();
        }
    }

    private void Keep(ReadOnlySpan<byte> data)
    {
        long total = _length + data.Length;
        if (CanReplay && total > limit)
        {
            CanReplay = false;
            _kept = null;
            _done.TrySetResult(false);
        }
        else if (CanReplay)
        {
            if (_kept is null || _kept.Length < total)
            {
                var grown = new byte[(int)Math.Min(limit, Math.Max(total, Math.Max(4096, (_kept?.Length ?? 0) * 2L)))];
                _kept?.AsSpan(0, (int)_length).CopyTo(grown);
                _kept = grown;
            }
            data.CopyTo(_kept.AsSpan((int)_length));
        }
        Volatile.Write(ref _length, total);
    }

    private sealed class Reader(ReplayableBody owner, int generation) : Stream
    {
        public int Generation => generation;

        public long Offset;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Offset; set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            owner.ReadAsync(this, buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
