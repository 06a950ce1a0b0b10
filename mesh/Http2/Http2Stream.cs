using System.Buffers;
using System.IO.Pipelines;

namespace Ambient.Mesh.Http2;

/// <summary>One stream. Reading and writing may run concurrently on different tasks (a tunnel copies both ways).</summary>
/// <remarks>
/// State lives here but is guarded by the connection's lock: the read loop, the application's writer and its reader
/// all touch it. The input pipe has its own small lock because its writer is fed outside the connection lock.
/// </remarks>
public sealed class Http2Stream
{
    // Received DATA is bounded by the window we advertise, so the pipe itself never needs to pause. Segments are
    // 64 KiB because a fast tunnel keeps a window's worth in flight between the read loop and the application's reader:
    // with 16 KiB segments that is more arrays than the shared ArrayPool retains, and throughput halved under GC churn.
    // A small DATA frame runs the waiting reader on the read loop's thread (see HandOffScheduler).
    private static readonly PipeOptions s_inputPipeOptions = new(
        readerScheduler: HandOffScheduler.Instance, pauseWriterThreshold: 0, resumeWriterThreshold: 0, minimumSegmentSize: 65536,
        useSynchronizationContext: false);

    private readonly Http2Connection _connection;
    private readonly Pipe _inputPipe = new(s_inputPipeOptions);
    private readonly Http2StreamInput _input;
    private readonly Lock _inputLock = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<Http2Response>? _response;
    private bool _inputWriterCompleted;

    internal Http2Stream(Http2Connection connection, int id, bool isClient, IReadOnlyList<HeaderField> requestHeaders, int sendWindow, int receiveWindow)
    {
        _connection = connection;
        Id = id;
        IsClient = isClient;
        RequestHeaders = requestHeaders;
        SendWindow = sendWindow;
        ReceiveWindow = receiveWindow;
        _input = new Http2StreamInput(this, _inputPipe.Reader);
        if (isClient)
        {
            _response = new TaskCompletionSource<Http2Response>(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public int Id { get; }

    public Http2Connection Connection => _connection;

    /// <summary>Server role: the request headers as received (pseudo-headers included). Client role: the headers sent.</summary>
    public IReadOnlyList<HeaderField> RequestHeaders { get; }

    /// <summary>
    /// DATA from the peer. Completes (IsCompleted) at END_STREAM; a peer RST_STREAM or lost connection surfaces as
    /// <see cref="Http2StreamException"/> from ReadAsync. Window credit is returned to the peer as the reader consumes.
    /// </summary>
    public PipeReader Input => _input;

    /// <summary>Completes (never faults) when both directions are done or the stream was reset.</summary>
    public Task Completion => _completion.Task;

    // ---- state guarded by the connection lock ----
    internal bool IsClient { get; }
    internal long SendWindow;
    internal int ReceiveWindow;
    internal int PendingCredit;
    internal long Buffered;
    internal bool LocalEnded;
    internal bool RemoteEnded;
    internal bool ResponseHeadersSent;
    internal bool ResponseHeadersReceived;
    internal bool IsReset;
    internal bool IsClosed;
    internal bool InputAbandoned;
    internal bool CreditDisabled;
    internal TaskCompletionSource? WindowWaiter;

    /// <summary>Client role: waits for the final (non-1xx) response HEADERS.</summary>
    public ValueTask<Http2Response> ReadResponseHeadersAsync(CancellationToken cancellationToken)
    {
        if (_response is null)
        {
            throw new InvalidOperationException("Only client streams receive response headers.");
        }

        return new ValueTask<Http2Response>(_response.Task.WaitAsync(cancellationToken));
    }

    /// <summary>Server role: sends the response HEADERS (":status" added by this method).</summary>
    public ValueTask SendResponseHeadersAsync(int status, IReadOnlyList<HeaderField>? headers, bool endStream, CancellationToken cancellationToken) =>
        _connection.SendResponseHeadersAsync(this, status, headers, endStream, cancellationToken);

    /// <summary>Sends DATA, waiting for flow-control window; splits at the peer's max frame size. Does not copy after return.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        data.IsEmpty ? default : _connection.WriteDataAsync(this, data, endStream: false, cancellationToken);

    /// <summary>Half-close: sends END_STREAM (an empty DATA frame if needed). Idempotent.</summary>
    public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) =>
        _connection.WriteDataAsync(this, ReadOnlyMemory<byte>.Empty, endStream: true, cancellationToken);

    /// <summary>Sends RST_STREAM with <paramref name="code"/> (idempotent; no-op once the stream is closed).</summary>
    public void Reset(Http2ErrorCode code) => _connection.ResetStream(this, code);

    public override string ToString() => $"HTTP/2 stream {Id}";

    // ---- called by the connection ----

    internal void SetResponse(Http2Response response) => _response?.TrySetResult(response);

    /// <summary>Copies received DATA into the input pipe (read loop only; outside the connection lock).</summary>
    internal void WriteInput(in ReadOnlySequence<byte> data)
    {
        lock (_inputLock)
        {
            if (_inputWriterCompleted)
            {
                return;
            }

            PipeWriter writer = _inputPipe.Writer;
            foreach (ReadOnlyMemory<byte> segment in data)
            {
                writer.Write(segment.Span);
            }

            HandOffScheduler.Flush(writer, data.Length);
        }
    }

    /// <summary>END_STREAM (null) or failure: the reader sees completion or the exception.</summary>
    internal void CompleteInput(Exception? error)
    {
        lock (_inputLock)
        {
            if (_inputWriterCompleted)
            {
                return;
            }

            _inputWriterCompleted = true;
            _inputPipe.Writer.Complete(error);
        }
    }

    /// <summary>The stream is closed: fail whatever is still waiting and complete <see cref="Completion"/>.</summary>
    internal void OnClosed(Exception? error)
    {
        if (error is not null)
        {
            CompleteInput(error);
            _response?.TrySetException(error);
        }
        else
        {
            // Closed normally before any response (e.g. the peer ended both sides without HEADERS): cannot happen on a
            // valid stream, but never leave the caller waiting.
            _response?.TrySetException(new Http2StreamException(Http2ErrorCode.ProtocolError, false, "Stream closed without a response."));
        }

        _response?.Task.Exception?.Handle(static _ => true);
        _completion.TrySetResult();
    }

    internal void OnInputConsumed(long bytes) => _connection.OnInputConsumed(this, bytes);

    internal void OnInputAbandoned() => _connection.OnInputAbandoned(this);
}
