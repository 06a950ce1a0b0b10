using System.Buffers;
using System.IO.Pipelines;
using Ambient.Mesh.Http2.Frames;
using Ambient.Mesh.Http2.Hpack;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Http2;

/// <summary>
/// One HTTP/2 connection over an established transport (an SslStream with ALPN h2, or any duplex Stream for h2c),
/// in the client or the server role. Multiplexes streams with RFC 9113 flow control.
/// </summary>
/// <remarks>
/// Three moving parts: the read loop (parses frames, feeds each stream's input buffer), the write loop (drains the output
/// pipe to the transport, so frames from all streams coalesce into large writes), and callers that serialise frames into
/// the output pipe under <see cref="_lock"/>. One lock guards all connection and stream state. The one exception to
/// "no I/O under the lock": a small flush runs the write loop inline on the flushing thread (see HandOffScheduler),
/// which encrypts and sends a few KiB there rather than waking another thread for them.
/// </remarks>
public sealed partial class Http2Connection : IAsyncDisposable
{
    internal static ReadOnlySpan<byte> ClientPreface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>RFC 9113 section 6.9.2: the window every stream and the connection start with.</summary>
    internal const int DefaultWindowSize = 65535;
    internal const int MaxWindowSize = int.MaxValue;

    private readonly Stream _transport;
    private readonly Http2Options _options;
    private readonly ILogger _logger;
    private readonly bool _isServer;
    private readonly Func<Http2Stream, Task>? _onStream;
    private readonly Lock _lock = new();
    private readonly Dictionary<int, Http2Stream> _streams = [];
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Cancelled, never disposed: Abort may run after DisposeAsync, and a source without a timer holds nothing to free.
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2213", Justification = "cancelled on close; Abort may follow DisposeAsync")]
    private readonly CancellationTokenSource _abortCts = new();
    private readonly HpackEncoder _encoder;
    private readonly HpackDecoder _decoder;
    private int _started;

    // Peer settings (RFC 9113 section 6.5.2 defaults until its SETTINGS arrive).
    private int _peerMaxFrameSize = Http2FrameHeader.MinMaxFrameSize;
    private int _peerInitialWindowSize = DefaultWindowSize;
    private long _peerMaxConcurrentStreams = uint.MaxValue;
    private bool _peerSettingsReceived;
    private bool _peerEnabledConnectProtocol;
    private int _unackedSettings;

    // Stream bookkeeping.
    private int _nextStreamId = 1;
    private int _lastPeerStreamId;
    private long _totalStreams;
    private long _lastActiveTicks = Environment.TickCount64;

    // Lifecycle.
    private bool _goAwaySent;
    private bool _goAwayReceived;
    private int _goAwayReceivedLastStreamId = int.MaxValue;
    private Http2ErrorCode? _failureCode;
    private bool _closing;
    private bool _drainInputAfterClose;

    private Http2Connection(Stream transport, Http2Options options, ILogger logger, bool isServer, Func<Http2Stream, Task>? onStream)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ValidateOptions(options);
        _transport = transport;
        _options = options;
        _logger = logger;
        _isServer = isServer;
        _onStream = onStream;
        _encoder = new HpackEncoder(maxTableSizeCap: 4096);
        _decoder = new HpackDecoder(Math.Max(options.HeaderTableSize, 4096));
        _connectionReceiveWindow = options.InitialConnectionWindowSize;
        _outputPipe = new Pipe(s_outputPipeOptions);
        _output = _outputPipe.Writer;
        _headerBlock = ArrayPool<byte>.Shared.Rent(4096);
    }

    /// <summary>Client role: sends the preface and SETTINGS. Call <see cref="Start"/> before opening streams.</summary>
    public static Http2Connection CreateClient(Stream transport, Http2Options options, ILogger logger) =>
        new(transport, options, logger, isServer: false, onStream: null);

    /// <summary>
    /// Server role: expects the client preface. <paramref name="onStream"/> is invoked (not awaited by the read loop)
    /// once for each new stream whose request HEADERS arrived; the handler owns the stream.
    /// </summary>
    public static Http2Connection CreateServer(Stream transport, Http2Options options, Func<Http2Stream, Task> onStream, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(onStream);
        return new(transport, options, logger, isServer: true, onStream);
    }

    /// <summary>Starts the handshake and the read loop in the background. <see cref="Completion"/> ends with the connection.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The connection was already started.");
        }

        lock (_lock)
        {
            WritePrefaceLocked();
        }

        _ = RunAsync();
    }

    /// <summary>Completes when the connection is closed for any reason; never faults.</summary>
    public Task Completion => _completion.Task;

    /// <summary>True while a new stream may be opened now (not closing, GOAWAY not received, under the peer's stream limit).</summary>
    public bool CanOpenStream
    {
        get
        {
            lock (_lock)
            {
                return CanOpenStreamLocked();
            }
        }
    }

    /// <summary>True once GOAWAY was sent or received, or the connection failed.</summary>
    public bool IsClosing
    {
        get
        {
            lock (_lock)
            {
                return _closing || _goAwaySent || _goAwayReceived;
            }
        }
    }

    public int ActiveStreams
    {
        get
        {
            lock (_lock)
            {
                return _streams.Count;
            }
        }
    }

    /// <summary><see cref="Environment.TickCount64"/> when the last stream closed or opened (for idle eviction).</summary>
    public long LastActiveTicks => Interlocked.Read(ref _lastActiveTicks);

    /// <summary>Streams opened (client) or accepted (server) over the connection's life.</summary>
    public long TotalStreams => Interlocked.Read(ref _totalStreams);

    /// <summary>The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until its SETTINGS arrive).</summary>
    public long PeerMaxConcurrentStreams
    {
        get
        {
            lock (_lock)
            {
                return _peerMaxConcurrentStreams;
            }
        }
    }

    /// <summary>True once the peer advertised SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441).</summary>
    public bool PeerSupportsExtendedConnect
    {
        get
        {
            lock (_lock)
            {
                return _peerEnabledConnectProtocol;
            }
        }
    }

    /// <summary>The streams currently open (for diagnostics and tests).</summary>
    internal Http2Stream[] SnapshotStreams()
    {
        lock (_lock)
        {
            return [.. _streams.Values];
        }
    }

    private string Role => _isServer ? "server" : "client";

    /// <summary>Client role: opens a stream with these request headers (pseudo-headers first), END_STREAM not set.</summary>
    /// <exception cref="Http2StreamException">The connection cannot open more streams (closing, or limit reached).</exception>
    public ValueTask<Http2Stream> OpenStreamAsync(IReadOnlyList<HeaderField> headers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(headers);
        if (_isServer)
        {
            throw new InvalidOperationException("A server connection does not open streams.");
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<Http2Stream>(cancellationToken);
        }

        Http2HeaderValidator.ThrowIfInvalidOutgoing(headers);
        Http2Stream stream;
        lock (_lock)
        {
            if (!CanOpenStreamLocked())
            {
                string why = _closing || _goAwayReceived || _goAwaySent ? "the connection is closing" : "the stream limit is reached";
                return ValueTask.FromException<Http2Stream>(new Http2StreamException(Http2ErrorCode.RefusedStream, false, $"Cannot open a stream: {why}."));
            }

            int id = _nextStreamId;
            _nextStreamId += 2;
            stream = new Http2Stream(this, id, isClient: true, headers, _peerInitialWindowSize, _options.InitialStreamWindowSize);
            _streams.Add(id, stream);
            _totalStreams++;
            _lastActiveTicks = Environment.TickCount64;
            // Ids must reach the wire in increasing order (section 5.1.1) and HPACK blocks in encoding order: both
            // hold because the id is allocated and the block encoded and queued under the same lock.
            WriteHeadersLocked(id, null, headers, endStream: false);
            FlushOutputLocked();
        }

        return ValueTask.FromResult(stream);
    }

    /// <summary>Graceful: sends GOAWAY (last stream id = highest processed); existing streams run to completion.</summary>
    public ValueTask ShutdownAsync(Http2ErrorCode code = Http2ErrorCode.NoError)
    {
        lock (_lock)
        {
            if (!_goAwaySent && !_outputCompleted)
            {
                _goAwaySent = true;
                Http2FrameWriter.WriteGoAway(_output, _lastPeerStreamId, code, default);
                FlushOutputLocked();
            }

            _closing = true;
            CloseIfIdleLocked();
        }

        return default;
    }

    /// <summary>Closes the transport now; every open stream fails with <see cref="Http2StreamException"/>.</summary>
    public void Abort() => Abort("aborted locally");

    public async ValueTask DisposeAsync()
    {
        Abort("disposed");
        if (Volatile.Read(ref _started) != 0)
        {
            await Completion.ConfigureAwait(false);
        }
        else
        {
            await FinishAsync().ConfigureAwait(false);
        }
    }

    private void Abort(string reason)
    {
        List<Http2Stream> failed;
        lock (_lock)
        {
            _closing = true;
            _failureCode ??= Http2ErrorCode.Cancel;
            CompleteOutputLocked();
            failed = DetachAllStreamsLocked();
        }

        Http2Log.TransportClosed(_logger, Role, reason);
        _abortCts.Cancel();
        DisposeTransport();
        FailStreams(failed, new Http2StreamException(Http2ErrorCode.Cancel, false, $"The HTTP/2 connection was {reason}."));
    }

    /// <summary>Connection error (section 5.4.1): GOAWAY with the code, then close.</summary>
    private void Fail(Http2ErrorCode code, string reason)
    {
        List<Http2Stream> failed;
        lock (_lock)
        {
            if (_failureCode is not null)
            {
                return;
            }

            _failureCode = code;
            _closing = true;
            if (!_outputCompleted)
            {
                _goAwaySent = true;
                Span<byte> debug = stackalloc byte[Math.Min(reason.Length, 128)];
                for (int i = 0; i < debug.Length; i++)
                {
                    debug[i] = reason[i] < 0x80 ? (byte)reason[i] : (byte)'?';
                }

                Http2FrameWriter.WriteGoAway(_output, _lastPeerStreamId, code, debug);
                _drainInputAfterClose = true;
            }

            CompleteOutputLocked();
            failed = DetachAllStreamsLocked();
        }

        Http2Log.ConnectionError(_logger, Role, code, reason);
        FailStreams(failed, new Http2StreamException(code, false, $"HTTP/2 connection error {code}: {reason}"));
    }

    private async Task RunAsync()
    {
        Task writer = Task.Run(WriteLoopAsync);
        Task reader = Task.Run(ReadLoopAsync);
        using var handshakeTimer = new Timer(static s => ((Http2Connection)s!).OnHandshakeTimeout(), this, _options.HandshakeTimeout, Timeout.InfiniteTimeSpan);
        await writer.ConfigureAwait(false);
        if (!reader.IsCompleted && Volatile.Read(ref _drainInputAfterClose))
        {
            // We sent GOAWAY for an error: keep reading briefly so unread input does not turn our close into a TCP
            // reset that destroys the GOAWAY before the peer reads it.
            await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
        }

        await FinishAsync().ConfigureAwait(false);
        await reader.ConfigureAwait(false);
        Http2Log.ConnectionClosed(_logger, Role, TotalStreams);
        _completion.TrySetResult();
    }

    private Task FinishAsync()
    {
        List<Http2Stream> failed;
        lock (_lock)
        {
            _closing = true;
            CompleteOutputLocked();
            failed = DetachAllStreamsLocked();
        }

        _abortCts.Cancel();
        DisposeTransport();
        FailStreams(failed, new Http2StreamException(_failureCode ?? Http2ErrorCode.Cancel, false, "The HTTP/2 connection closed."));
        if (Volatile.Read(ref _started) == 0)
        {
            _completion.TrySetResult();
        }

        return Task.CompletedTask;
    }

    private void OnHandshakeTimeout()
    {
        bool timedOut;
        Http2ErrorCode code;
        lock (_lock)
        {
            timedOut = !_peerSettingsReceived || _unackedSettings > 0;
            code = _peerSettingsReceived ? Http2ErrorCode.SettingsTimeout : Http2ErrorCode.ProtocolError;
        }

        if (timedOut)
        {
            Fail(code, _peerSettingsReceived ? "SETTINGS not acknowledged in time" : "no preface/SETTINGS from the peer in time");
        }
    }

    private void DisposeTransport()
    {
        try
        {
            _transport.Dispose();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Closing a broken transport can fail; it is closed either way.
        }
    }

    private bool CanOpenStreamLocked() =>
        !_closing && !_goAwayReceived && !_goAwaySent && _failureCode is null
        && _streams.Count < Math.Min(_peerMaxConcurrentStreams, _options.MaxConcurrentStreams)
        && _nextStreamId > 0 && _nextStreamId <= MaxWindowSize;

    /// <summary>After GOAWAY (either way) the connection ends once its last stream does.</summary>
    private void CloseIfIdleLocked()
    {
        if ((_goAwaySent || _goAwayReceived) && _streams.Count == 0)
        {
            _closing = true;
            CompleteOutputLocked();
        }
    }

    private List<Http2Stream> DetachAllStreamsLocked()
    {
        var list = new List<Http2Stream>(_streams.Values);
        foreach (Http2Stream s in list)
        {
            s.IsClosed = true;
            s.IsReset = true;
            s.CreditDisabled = true;
            s.WindowWaiter?.TrySetResult();
            s.WindowWaiter = null;
        }

        _streams.Clear();
        _connectionWindowWaiters.Clear();
        _drainWaiter?.TrySetResult();
        _drainWaiter = null;
        return list;
    }

    private static void FailStreams(List<Http2Stream> streams, Http2StreamException error)
    {
        foreach (Http2Stream s in streams)
        {
            s.OnClosed(error);
        }
    }

    private static void ValidateOptions(Http2Options o)
    {
        if (o.InitialStreamWindowSize < 1 || o.InitialConnectionWindowSize < DefaultWindowSize)
        {
            throw new ArgumentException("Window sizes must be positive and the connection window at least 65535.", nameof(o));
        }

        if (o.MaxFrameSize < Http2FrameHeader.MinMaxFrameSize || o.MaxFrameSize > Http2FrameHeader.MaxMaxFrameSize)
        {
            throw new ArgumentException("MaxFrameSize must be between 16384 and 16777215 (RFC 9113 section 6.5.2).", nameof(o));
        }

        if (o.MaxConcurrentStreams < 1 || o.MaxHeaderListSize < 1024 || o.HeaderTableSize < 0)
        {
            throw new ArgumentException("MaxConcurrentStreams, MaxHeaderListSize or HeaderTableSize out of range.", nameof(o));
        }
    }
}
