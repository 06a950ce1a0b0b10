using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Ambient.Mesh.Http2;

/// <summary>
/// The application's view of a stream's received DATA. Wraps the stream's pipe reader to learn how many bytes the
/// application consumed on each AdvanceTo, which is what flow-control credit is returned for (RFC 9113 section 6.9):
/// the peer can only send what we have room to buffer.
/// </summary>
/// <remarks>
/// A read that has to wait completes through this object (it is its own value-task source) rather than through an
/// async method: an idle tunnel waits here for its whole life, and a state machine per waiting read would be a few
/// hundred bytes per open tunnel. The continuation runs where the pipe completes the inner read, so a small DATA
/// frame still reaches the application on the read loop's thread (see HandOffScheduler).
/// </remarks>
internal sealed class Http2StreamInput : PipeReader, IValueTaskSource<ReadResult>
{
    private readonly Http2Stream _stream;
    private readonly PipeReader _inner;
    private readonly Action _onInnerCompleted;
    private ReadOnlySequence<byte> _lastBuffer;
    private ManualResetValueTaskSourceCore<ReadResult> _core;
    private ConfiguredValueTaskAwaitable<ReadResult>.ConfiguredValueTaskAwaiter _pending;

    public Http2StreamInput(Http2Stream stream, PipeReader inner)
    {
        _stream = stream;
        _inner = inner;
        _onInnerCompleted = OnInnerCompleted;
        _core.RunContinuationsAsynchronously = false;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<ReadResult> read = _inner.ReadAsync(cancellationToken);
        if (read.IsCompletedSuccessfully)
        {
            ReadResult result = read.Result;
            _lastBuffer = result.Buffer;
            return new ValueTask<ReadResult>(result);
        }

        _core.Reset();
        _pending = read.ConfigureAwait(false).GetAwaiter();
        _pending.UnsafeOnCompleted(_onInnerCompleted);
        return new ValueTask<ReadResult>(this, _core.Version);
    }

    private void OnInnerCompleted()
    {
        ReadResult result;
        try
        {
            result = _pending.GetResult();
        }
        catch (Exception ex)
        {
            _pending = default;
            _core.SetException(ex);
            return;
        }

        _pending = default;
        _lastBuffer = result.Buffer;
        _core.SetResult(result);
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    public override bool TryRead(out ReadResult result)
    {
        if (_inner.TryRead(out result))
        {
            _lastBuffer = result.Buffer;
            return true;
        }

        return false;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        long bytes = _lastBuffer.IsEmpty ? 0 : _lastBuffer.Slice(_lastBuffer.Start, consumed).Length;
        _lastBuffer = default;
        _inner.AdvanceTo(consumed, examined);
        if (bytes > 0)
        {
            _stream.OnInputConsumed(bytes);
        }
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();

    public override void Complete(Exception? exception = null)
    {
        _inner.Complete(exception);
        _stream.OnInputAbandoned();
    }
}
