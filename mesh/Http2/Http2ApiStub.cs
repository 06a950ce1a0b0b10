// TEMPORARY: stubs until the connection is implemented.
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Http2;

/// <summary>
/// One HTTP/2 connection over an established transport (an SslStream with ALPN h2, or any duplex Stream for h2c),
/// in the client or the server role. Multiplexes streams with RFC 9113 flow control.
/// </summary>
public sealed class Http2Connection : IAsyncDisposable
{
    /// <summary>Client role: sends the preface and SETTINGS. Call <see cref="Start"/> before opening streams.</summary>
    public static Http2Connection CreateClient(Stream transport, Http2Options options, ILogger logger) =>
        throw new NotImplementedException();

    /// <summary>
    /// Server role: expects the client preface. <paramref name="onStream"/> is invoked (not awaited by the read loop)
    /// once for each new stream whose request HEADERS arrived; the handler owns the stream.
    /// </summary>
    public static Http2Connection CreateServer(Stream transport, Http2Options options, Func<Http2Stream, Task> onStream, ILogger logger) =>
        throw new NotImplementedException();

    /// <summary>Starts the handshake and the read loop in the background. <see cref="Completion"/> ends with the connection.</summary>
    public void Start() => throw new NotImplementedException();

    /// <summary>Completes when the connection is closed for any reason; never faults.</summary>
    public Task Completion => throw new NotImplementedException();

    /// <summary>True while a new stream may be opened now (not closing, GOAWAY not received, under the peer's stream limit).</summary>
    public bool CanOpenStream => throw new NotImplementedException();

    /// <summary>True once GOAWAY was sent or received, or the connection failed.</summary>
    public bool IsClosing => throw new NotImplementedException();

    public int ActiveStreams => throw new NotImplementedException();

    /// <summary><see cref="Environment.TickCount64"/> when the last stream closed or opened (for idle eviction).</summary>
    public long LastActiveTicks => throw new NotImplementedException();

    /// <summary>Client role: opens a stream with these request headers (pseudo-headers first), END_STREAM not set.</summary>
    /// <exception cref="Http2StreamException">The connection cannot open more streams (closing, or limit reached).</exception>
    public ValueTask<Http2Stream> OpenStreamAsync(IReadOnlyList<HeaderField> headers, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    /// <summary>Graceful: sends GOAWAY (last stream id = highest processed); existing streams run to completion.</summary>
    public ValueTask ShutdownAsync(Http2ErrorCode code = Http2ErrorCode.NoError) => throw new NotImplementedException();

    /// <summary>Closes the transport now; every open stream fails with <see cref="Http2StreamException"/>.</summary>
    public void Abort() => throw new NotImplementedException();

    public ValueTask DisposeAsync() => throw new NotImplementedException();
}

/// <summary>One stream. Reading and writing may run concurrently on different tasks (a tunnel copies both ways).</summary>
public sealed class Http2Stream
{
    public int Id => throw new NotImplementedException();

    public Http2Connection Connection => throw new NotImplementedException();

    /// <summary>Server role: the request headers as received (pseudo-headers included).</summary>
    public IReadOnlyList<HeaderField> RequestHeaders => throw new NotImplementedException();

    /// <summary>Client role: waits for the response HEADERS.</summary>
    public ValueTask<Http2Response> ReadResponseHeadersAsync(CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    /// <summary>Server role: sends the response HEADERS (":status" added by this method).</summary>
    public ValueTask SendResponseHeadersAsync(int status, IReadOnlyList<HeaderField>? headers, bool endStream, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    /// <summary>
    /// DATA from the peer. Completes (IsCompleted) at END_STREAM; a peer RST_STREAM or lost connection surfaces as
    /// <see cref="Http2StreamException"/> from ReadAsync. Window credit is returned to the peer as the reader consumes.
    /// </summary>
    public PipeReader Input => throw new NotImplementedException();

    /// <summary>Sends DATA, waiting for flow-control window; splits at the peer's max frame size. Does not copy after return.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    /// <summary>Half-close: sends END_STREAM (an empty DATA frame if needed). Idempotent.</summary>
    public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>Sends RST_STREAM with <paramref name="code"/> (idempotent; no-op once the stream is closed).</summary>
    public void Reset(Http2ErrorCode code) => throw new NotImplementedException();

    /// <summary>Completes when both directions are done or the stream was reset.</summary>
    public Task Completion => throw new NotImplementedException();
}
