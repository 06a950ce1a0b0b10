using System.Buffers;
using System.IO.Pipelines;

namespace Ambient.Mesh.Http2;

/// <summary>One stream. Reading and writing may run concurrently on different tasks (a tunnel copies both ways).</summary>
/// <remarks>
/// State lives here but is guarded by the connection's lock: the read loop, the application's writer and its reader
/// all touch it. The input buffer has its own lock because the read loop feeds it outside the connection lock; received
/// DATA is bounded by the window we advertise, so it never needs to make the read loop wait.
/// </remarks>
public sealed class Http2Stream
{
    private readonly Http2Connection _connection;
    private readonly Http2StreamInput _input;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<Http2Response>? _response;

    internal Http2Stream(Http2Connection connection, int id, bool isClient, IReadOnlyList<HeaderField> requestHeaders, int sendWindow, int receiveWindow)
    {
        _connection = connection;
        Id = id;
        IsClient = isClient;
        RequestHeaders = requestHeaders;
        SendWindow = sendWindow;
        ReceiveWindow = receiveWindow;
        _input = new Http2StreamInput(this);
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

    /// <summary>
    /// Server role: ends the stream with a trailing HEADERS block (RFC 9113 section 8.1), after the response headers and
    /// any DATA. gRPC needs it: a call's status travels in trailers (<c>grpc-status</c>).
    /// </summary>
    public ValueTask SendTrailersAsync(IReadOnlyList<HeaderField> trailers, CancellationToken cancellationToken) =>
        _connection.SendTrailersAsync(this, trailers, cancellationToken);

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

    /// <summary>Copies received DATA into the input buffer (read loop only; outside the connection lock).</summary>
    internal void WriteInput(in ReadOnlySequence<byte> data) => _input.Write(data);

    /// <summary>END_STREAM (null) or failure: the reader sees completion or the exception.</summary>
    internal void CompleteInput(Exception? error) => _input.CompleteWriter(error);

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
