using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;

namespace Ambient.Mesh.Http2;

/// <summary>
/// The application's view of a stream's received DATA: a single-writer (the read loop), single-reader buffer with
/// the <see cref="PipeReader"/> contract. It learns how many bytes the application consumed on each AdvanceTo,
/// which is what flow-control credit is returned for (RFC 9113 section 6.9): the peer can only send what we have
/// room to buffer, so the writer never needs to wait.
/// </summary>
/// <remarks>
/// Written for the shape of a tunnel rather than on top of <see cref="Pipe"/>: an idle tunnel waits here for its whole
/// life, and a Pipe with its reader, writer, segment pool and lock (plus a state machine per waiting read) came to
/// about 800 bytes per stream; this is one object, and buffer memory only while data is waiting. A waiting read
/// completes through this object (it is its own value-task source). A small DATA frame runs the reader's
/// continuation on the read loop's thread (one thread from socket to socket); a large one, the end of the stream
/// and failures hand it to the thread pool (see <see cref="HandOffScheduler"/>).
/// </remarks>
internal sealed class Http2StreamInput : PipeReader, IValueTaskSource<ReadResult>
{
    /// <summary>Segments are 64 KiB: a fast tunnel keeps a window's worth in flight, and fewer, larger arrays stay
    /// within what the shared ArrayPool retains (with 16 KiB segments throughput halved under GC churn).</summary>
    private const int SegmentSize = 64 * 1024;

    private readonly Http2Stream _stream;
    private Segment? _head;
    private int _headStart;
    private Segment? _tail;
    private bool _writerCompleted;
    private Exception? _writerError;
    private bool _readerCompleted;
    private bool _cancelPending;
    private bool _waitForNewData;
    private bool _awaiting;
    private CancellationTokenRegistration _cancellation;
    private ManualResetValueTaskSourceCore<ReadResult> _core;

    public Http2StreamInput(Http2Stream stream)
    {
        _stream = stream;
        _core.RunContinuationsAsynchronously = false;
    }

    private object Sync => this;

    // ---- writer side (the connection's read loop) ----

    /// <summary>Appends received DATA and wakes a waiting reader.</summary>
    internal void Write(in ReadOnlySequence<byte> data)
    {
        lock (Sync)
        {
            if (_writerCompleted || _readerCompleted)
            {
                return; // a reader that left is credited by the connection (OnInputAbandoned)
            }

            foreach (ReadOnlyMemory<byte> chunk in data)
            {
                Append(chunk.Span);
            }

            _waitForNewData = false;
            if (!_awaiting || data.IsEmpty)
            {
                return;
            }
        }

        if (data.Length <= HandOffScheduler.InlineLimit)
        {
            WakeReader();
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.WakeReader(), this, preferLocal: false);
        }
    }

    /// <summary>END_STREAM (null) or failure: the reader sees completion, or the exception once it has read what came before.</summary>
    internal void CompleteWriter(Exception? error)
    {
        lock (Sync)
        {
            if (_writerCompleted)
            {
                return;
            }

            _writerCompleted = true;
            _writerError = error;
            if (!_awaiting)
            {
                return;
            }
        }

        ThreadPool.UnsafeQueueUserWorkItem(static s => s.WakeReader(), this, preferLocal: false);
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            if (_tail is null || _tail.Available == 0)
            {
                var segment = new Segment(ArrayPool<byte>.Shared.Rent(Math.Max(SegmentSize, bytes.Length)));
                if (_tail is null)
                {
                    _head = segment;
                    _headStart = 0;
                }
                else
                {
                    _tail.Link(segment);
                }

                _tail = segment;
            }

            bytes = bytes[_tail.Append(bytes)..];
        }
    }

    // ---- reader side (the application) ----

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        lock (Sync)
        {
            ThrowIfReaderCompleted();
            if (TryReadLocked(out ReadResult result, out Exception? error))
            {
                return new ValueTask<ReadResult>(result);
            }

            if (error is not null)
            {
                return ValueTask.FromException<ReadResult>(error);
            }

            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<ReadResult>(cancellationToken);
            }

            _core.Reset();
            _awaiting = true;
            if (cancellationToken.CanBeCanceled)
            {
                _cancellation = cancellationToken.UnsafeRegister(static (s, ct) => ((Http2StreamInput)s!).OnReadCanceled(ct), this);
            }

            return new ValueTask<ReadResult>(this, _core.Version);
        }
    }

    public override bool TryRead(out ReadResult result)
    {
        lock (Sync)
        {
            ThrowIfReaderCompleted();
            if (TryReadLocked(out result, out Exception? error))
            {
                return true;
            }

            if (error is not null)
            {
                throw error;
            }

            return false;
        }
    }

    /// <summary>A result is ready: data not yet examined, a cancelled read, or the end of the stream.</summary>
    private bool TryReadLocked(out ReadResult result, out Exception? error)
    {
        error = null;
        if (_cancelPending)
        {
            _cancelPending = false;
            result = new ReadResult(BufferLocked(), isCanceled: true, isCompleted: _writerCompleted && _writerError is null);
            return true;
        }

        bool hasData = _head is not null && !_waitForNewData;
        if (_writerCompleted)
        {
            if (_writerError is not null)
            {
                error = _writerError;
                result = default;
                return false;
            }

            result = new ReadResult(BufferLocked(), isCanceled: false, isCompleted: true);
            return true;
        }

        if (hasData)
        {
            result = new ReadResult(BufferLocked(), isCanceled: false, isCompleted: false);
            return true;
        }

        result = default;
        return false;
    }

    private ReadOnlySequence<byte> BufferLocked() =>
        _head is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_head, _headStart, _tail!, _tail!.Memory.Length);

    /// <summary>Completes a waiting read with what is there now (called outside the lock).</summary>
    private void WakeReader()
    {
        ReadResult result;
        Exception? error;
        CancellationTokenRegistration registration;
        lock (Sync)
        {
            if (!_awaiting || !TryReadLocked(out result, out error) && error is null)
            {
                return;
            }

            _awaiting = false;
            registration = _cancellation;
            _cancellation = default;
        }

        registration.Dispose();
        if (error is not null)
        {
            _core.SetException(error);
        }
        else
        {
            _core.SetResult(result);
        }
    }

    private void OnReadCanceled(CancellationToken token)
    {
        lock (Sync)
        {
            if (!_awaiting)
            {
                return;
            }

            _awaiting = false;
            _cancellation = default;
        }

        _core.SetException(new OperationCanceledException(token));
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        long bytes = 0;
        lock (Sync)
        {
            if (_readerCompleted)
            {
                throw new InvalidOperationException("The reader was completed.");
            }

            if (_head is not null)
            {
                var target = consumed.GetObject() as Segment ?? _head;
                int index = consumed.GetObject() is null ? _headStart : consumed.GetInteger();
                while (_head != target)
                {
                    bytes += _head!.Memory.Length - _headStart;
                    _head = ReleaseHead(_head);
                    _headStart = 0;
                    if (_head is null)
                    {
                        throw new InvalidOperationException("AdvanceTo: the position is not in the buffer that was read.");
                    }
                }

                bytes += index - _headStart;
                _headStart = index;
                if (_head == _tail && _headStart == _tail!.Memory.Length)
                {
                    // Everything read: give the memory back while the stream is idle.
                    ReleaseHead(_head);
                    _head = _tail = null;
                    _headStart = 0;
                }
            }

            // The reader looked at everything and kept some: its next read waits for more data (PipeReader contract).
            _waitForNewData = _head is not null && IsEnd(examined);
        }

        if (bytes > 0)
        {
            _stream.OnInputConsumed(bytes);
        }
    }

    private bool IsEnd(SequencePosition examined) =>
        examined.GetObject() == _tail && _tail is not null && examined.GetInteger() == _tail.Memory.Length;

    private static Segment? ReleaseHead(Segment head)
    {
        var next = (Segment?)head.Next;
        head.Release();
        return next;
    }

    public override void CancelPendingRead()
    {
        lock (Sync)
        {
            _cancelPending = true;
            if (!_awaiting)
            {
                return;
            }
        }

        WakeReader();
    }

    public override void Complete(Exception? exception = null)
    {
        lock (Sync)
        {
            if (_readerCompleted)
            {
                return;
            }

            _readerCompleted = true;
            for (Segment? s = _head; s is not null; s = ReleaseHead(s))
            {
            }

            _head = _tail = null;
        }

        _stream.OnInputAbandoned();
    }

    private void ThrowIfReaderCompleted()
    {
        if (_readerCompleted)
        {
            throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
        }
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>One rented array; Memory grows as bytes are appended (only the tail ever grows).</summary>
    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        private byte[]? _array;

        public Segment(byte[] array)
        {
            _array = array;
            Memory = ReadOnlyMemory<byte>.Empty;
        }

        public int Available => _array is null ? 0 : _array.Length - Memory.Length;

        public int Append(ReadOnlySpan<byte> bytes)
        {
            int start = Memory.Length;
            int n = Math.Min(bytes.Length, _array!.Length - start);
            bytes[..n].CopyTo(_array.AsSpan(start));
            Memory = _array.AsMemory(0, start + n);
            return n;
        }

        /// <summary>Appends <paramref name="next"/> after this (full) segment.</summary>
        public void Link(Segment next)
        {
            next.RunningIndex = RunningIndex + Memory.Length;
            Next = next;
        }

        public void Release()
        {
            if (_array is not null)
            {
                ArrayPool<byte>.Shared.Return(_array);
                _array = null;
            }
        }
    }
}
