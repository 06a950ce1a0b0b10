using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Ambient.Mesh.Http2.Frames;
using Ambient.Mesh.Http2.Hpack;

namespace Ambient.Mesh.Http2;

public sealed partial class Http2Connection
{
    // Frames are appended under the lock and drained by one loop. The pipe never pauses on its own (so the read loop
    // can always queue a PING ACK or WINDOW_UPDATE without blocking); DATA writers pause themselves on _unsentBytes.
    // The write loop runs inline when a flush leaves little queued (see HandOffScheduler).
    private static readonly PipeOptions s_outputPipeOptions = new(
        readerScheduler: HandOffScheduler.Instance, pauseWriterThreshold: 0, resumeWriterThreshold: 0, minimumSegmentSize: 64 * 1024,
        useSynchronizationContext: false);

    /// <summary>DATA writers wait above this much queued output, and resume below the low mark.</summary>
    private const long OutputHighWater = 1024 * 1024;
    private const long OutputLowWater = 256 * 1024;

    /// <summary>
    /// Control frames (pings, window updates, resets) are queued even above the high mark; a peer that stops reading
    /// while provoking them cannot make us buffer without bound.
    /// </summary>
    private const long OutputHardLimit = 8 * 1024 * 1024;

    /// <summary>Largest DATA payload per frame: big enough to amortise the 9-byte header, small enough to interleave streams.</summary>
    private const int MaxDataChunk = 64 * 1024;

    private readonly Pipe _outputPipe;
    private readonly PipeWriter _output;
    private readonly List<Http2Stream> _connectionWindowWaiters = [];
    private bool _outputCompleted;
    private long _unsentBytes;
    private long _connectionSendWindow = DefaultWindowSize;
    private int _connectionReceiveWindow;
    private int _connectionPendingCredit;
    private TaskCompletionSource? _drainWaiter;
    private readonly int[] _recentlyReset = new int[32];
    private int _recentlyResetNext;

    private void WritePrefaceLocked()
    {
        if (!_isServer)
        {
            _output.Write(ClientPreface);
        }

        Span<(Http2SettingsParameter, uint)> settings = stackalloc (Http2SettingsParameter, uint)[7];
        int n = 0;
        if (_options.HeaderTableSize != 4096)
        {
            settings[n++] = (Http2SettingsParameter.HeaderTableSize, (uint)_options.HeaderTableSize);
        }

        if (_isServer)
        {
            // RFC 8441: lets a peer tunnel other protocols with :protocol; harmless for plain CONNECT.
            settings[n++] = (Http2SettingsParameter.EnableConnectProtocol, 1);
        }
        else
        {
            settings[n++] = (Http2SettingsParameter.EnablePush, 0);
        }

        settings[n++] = (Http2SettingsParameter.MaxConcurrentStreams, (uint)_options.MaxConcurrentStreams);
        settings[n++] = (Http2SettingsParameter.InitialWindowSize, (uint)_options.InitialStreamWindowSize);
        settings[n++] = (Http2SettingsParameter.MaxFrameSize, (uint)_options.MaxFrameSize);
        settings[n++] = (Http2SettingsParameter.MaxHeaderListSize, (uint)_options.MaxHeaderListSize);
        Http2FrameWriter.WriteSettings(_output, settings[..n]);
        _unackedSettings++;
        if (_options.InitialConnectionWindowSize > DefaultWindowSize)
        {
            // The connection window cannot be set by SETTINGS (section 6.9.2); it opens with a WINDOW_UPDATE.
            Http2FrameWriter.WriteWindowUpdate(_output, 0, _options.InitialConnectionWindowSize - DefaultWindowSize);
        }

        FlushOutputLocked();
    }

    private void FlushOutputLocked()
    {
        long pending = _output.UnflushedBytes;
        if (pending == 0)
        {
            return;
        }

        _unsentBytes += pending;
        // Little queued: the write loop encrypts and sends on this thread (under the lock, which it re-enters to
        // account the sent bytes). More: it runs on the pool, so that this producer can go on while it sends.
        HandOffScheduler.Flush(_output, _unsentBytes);
    }

    private void CompleteOutputLocked()
    {
        if (!_outputCompleted)
        {
            _outputCompleted = true;
            FlushOutputLocked();
            _output.Complete();
        }
    }

    /// <summary>Queues a control frame unless output is closed; a peer that lets them pile up is cut off.</summary>
    private bool CanWriteControlLocked()
    {
        if (_outputCompleted)
        {
            return false;
        }

        if (_unsentBytes > OutputHardLimit)
        {
            _closing = true;
            _failureCode ??= Http2ErrorCode.EnhanceYourCalm;
            CompleteOutputLocked();
            return false;
        }

        return true;
    }

    private void WriteHeadersLocked(int streamId, HeaderField? first, IReadOnlyList<HeaderField>? headers, bool endStream)
    {
        int max = HpackEncoder.MaxBlockPrefixLength;
        if (first is { } f)
        {
            max += HpackEncoder.MaxFieldLength(f);
        }

        if (headers is not null)
        {
            for (int i = 0; i < headers.Count; i++)
            {
                max += HpackEncoder.MaxFieldLength(headers[i]);
            }
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            Span<byte> span = buffer;
            int n = _encoder.BeginBlock(span);
            if (first is { } field)
            {
                n += _encoder.EncodeField(field, span[n..]);
            }

            if (headers is not null)
            {
                for (int i = 0; i < headers.Count; i++)
                {
                    n += _encoder.EncodeField(headers[i], span[n..]);
                }
            }

            Http2FrameWriter.WriteHeaders(_output, streamId, span[..n], endStream, _peerMaxFrameSize);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    internal ValueTask SendResponseHeadersAsync(Http2Stream stream, int status, IReadOnlyList<HeaderField>? headers, bool endStream, CancellationToken cancellationToken)
    {
        if (stream.IsClient)
        {
            throw new InvalidOperationException("Only server streams send response headers.");
        }

        if (status < 100 || status > 999)
        {
            throw new ArgumentOutOfRangeException(nameof(status));
        }

        if (status < 200 && endStream)
        {
            throw new ArgumentException("An informational (1xx) response cannot end the stream.", nameof(endStream));
        }

        if (headers is not null)
        {
            Http2HeaderValidator.ThrowIfInvalidOutgoing(headers);
        }

        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ThrowIfEndedLocked(stream);
            if (stream.ResponseHeadersSent)
            {
                throw new InvalidOperationException("Response headers were already sent.");
            }

            stream.ResponseHeadersSent = status >= 200;
            WriteHeadersLocked(stream.Id, new HeaderField(":status", StatusText(status)), headers, endStream);
            if (endStream)
            {
                stream.LocalEnded = true;
                CloseStreamIfDoneLocked(stream);
            }

            FlushOutputLocked();
        }

        return default;
    }

    internal ValueTask SendTrailersAsync(Http2Stream stream, IReadOnlyList<HeaderField> trailers, CancellationToken cancellationToken)
    {
        if (stream.IsClient)
        {
            throw new InvalidOperationException("Only server streams send trailers.");
        }

        Http2HeaderValidator.ThrowIfInvalidOutgoing(trailers);
        foreach (HeaderField f in trailers)
        {
            if (f.Name.StartsWith(':'))
            {
                throw new ArgumentException($"Trailers carry no pseudo-header fields ({f.Name}).", nameof(trailers));
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ThrowIfCannotSendLocked(stream);
            WriteHeadersLocked(stream.Id, null, trailers, endStream: true);
            stream.LocalEnded = true;
            CloseStreamIfDoneLocked(stream);
            FlushOutputLocked();
        }

        return default;
    }

    /// <summary>Copies <paramref name="data"/> into DATA frames as window allows; returns once all of it is queued.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    internal async ValueTask WriteDataAsync(Http2Stream stream, ReadOnlyMemory<byte> data, bool endStream, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task? wait = null;
            bool done = false;
            lock (_lock)
            {
                if (endStream && data.IsEmpty && stream.LocalEnded && !stream.IsReset)
                {
                    return; // CompleteWritesAsync is idempotent
                }

                ThrowIfCannotSendLocked(stream);
                while (true)
                {
                    if (data.IsEmpty)
                    {
                        if (endStream)
                        {
                            Http2FrameWriter.WriteData(_output, stream.Id, default, endStream: true);
                            stream.LocalEnded = true;
                            CloseStreamIfDoneLocked(stream);
                        }

                        done = true;
                        break;
                    }

                    long available = Math.Min(Math.Min(stream.SendWindow, _connectionSendWindow), Math.Min(_peerMaxFrameSize, MaxDataChunk));
                    if (available <= 0)
                    {
                        wait = WaitForWindowLocked(stream);
                        break;
                    }

                    int n = (int)Math.Min(available, data.Length);
                    bool last = n == data.Length && endStream;
                    Http2FrameWriter.WriteData(_output, stream.Id, data.Span[..n], last);
                    stream.SendWindow -= n;
                    _connectionSendWindow -= n;
                    data = data[n..];
                    if (last)
                    {
                        stream.LocalEnded = true;
                        CloseStreamIfDoneLocked(stream);
                        done = true;
                        break;
                    }

                    if (_unsentBytes + _output.UnflushedBytes > OutputHighWater)
                    {
                        break; // flush, then wait for the write loop to drain below the low mark
                    }
                }

                FlushOutputLocked();
                if (wait is null && _unsentBytes > OutputHighWater && !_outputCompleted)
                {
                    _drainWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _drainWaiter.Task;
                }
            }

            if (wait is not null)
            {
                await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            if (done)
            {
                return;
            }
        }
    }

    private Task WaitForWindowLocked(Http2Stream stream)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        stream.WindowWaiter = waiter;
        if (_connectionSendWindow <= 0)
        {
            _connectionWindowWaiters.Add(stream);
        }

        return waiter.Task;
    }

    private void ThrowIfCannotSendLocked(Http2Stream stream)
    {
        ThrowIfEndedLocked(stream);
        if (!stream.IsClient && !stream.ResponseHeadersSent)
        {
            // DATA before the final response HEADERS would be malformed (section 8.1).
            throw new InvalidOperationException("Send the response headers before writing to a server stream.");
        }
    }

    private void ThrowIfEndedLocked(Http2Stream stream)
    {
        if (stream.IsReset || _outputCompleted)
        {
            throw new Http2StreamException(_failureCode ?? Http2ErrorCode.Cancel, false, $"HTTP/2 stream {stream.Id} was reset or its connection closed.");
        }

        if (stream.LocalEnded)
        {
            throw new InvalidOperationException($"HTTP/2 stream {stream.Id} already ended its writes.");
        }
    }

    /// <summary>Local reset (section 6.4): RST_STREAM, and fail the stream's pending reads and writes.</summary>
    internal void ResetStream(Http2Stream stream, Http2ErrorCode code)
    {
        lock (_lock)
        {
            if (stream.IsClosed)
            {
                return;
            }

            if (CanWriteControlLocked())
            {
                Http2FrameWriter.WriteRstStream(_output, stream.Id, code);
                FlushOutputLocked();
            }

            DetachStreamLocked(stream);
        }

        Http2Log.StreamReset(_logger, stream.Id, "local", code);
        stream.OnClosed(new Http2StreamException(code, false, $"HTTP/2 stream {stream.Id} was reset locally ({code})."));
    }

    /// <summary>Removes a reset stream from the table, releasing its buffered bytes back to the connection window.</summary>
    private void DetachStreamLocked(Http2Stream stream)
    {
        NoteResetLocked(stream.Id);
        stream.IsReset = true;
        stream.IsClosed = true;
        if (!stream.CreditDisabled)
        {
            stream.CreditDisabled = true;
            AddConnectionCreditLocked((int)stream.Buffered);
            stream.Buffered = 0;
        }

        stream.WindowWaiter?.TrySetResult();
        stream.WindowWaiter = null;
        RemoveStreamLocked(stream);
    }

    /// <summary>Remembers the last few reset stream ids: the peer's frames already in flight for them are ignored.</summary>
    private void NoteResetLocked(int streamId)
    {
        _recentlyReset[_recentlyResetNext] = streamId;
        _recentlyResetNext = (_recentlyResetNext + 1) % _recentlyReset.Length;
    }

    private bool WasRecentlyResetLocked(int streamId) => Array.IndexOf(_recentlyReset, streamId) >= 0;

    private void CloseStreamIfDoneLocked(Http2Stream stream)
    {
        if (stream.LocalEnded && stream.RemoteEnded && !stream.IsClosed)
        {
            stream.IsClosed = true;
            RemoveStreamLocked(stream);
            // Completion must not run continuations under the lock: it is RunContinuationsAsynchronously.
            stream.OnClosed(null);
        }
    }

    private void RemoveStreamLocked(Http2Stream stream)
    {
        if (_streams.Remove(stream.Id))
        {
            _lastActiveTicks = Environment.TickCount64;
            CloseIfIdleLocked();
        }
    }

    /// <summary>The application consumed <paramref name="bytes"/> of a stream's input: return credit in batches.</summary>
    internal void OnInputConsumed(Http2Stream stream, long bytes)
    {
        lock (_lock)
        {
            if (stream.CreditDisabled)
            {
                return;
            }

            stream.Buffered -= bytes;
            if (!stream.RemoteEnded && !stream.IsClosed)
            {
                stream.PendingCredit += (int)bytes;
                if (stream.PendingCredit >= _options.InitialStreamWindowSize / 2 && CanWriteControlLocked())
                {
                    Http2FrameWriter.WriteWindowUpdate(_output, stream.Id, stream.PendingCredit);
                    stream.ReceiveWindow += stream.PendingCredit;
                    stream.PendingCredit = 0;
                }
            }

            AddConnectionCreditLocked((int)bytes);
            FlushOutputLocked();
        }
    }

    /// <summary>The application stopped reading: whatever it left unread, and whatever still arrives, is credited back at once.</summary>
    internal void OnInputAbandoned(Http2Stream stream)
    {
        lock (_lock)
        {
            if (stream.InputAbandoned)
            {
                return;
            }

            stream.InputAbandoned = true;
            if (!stream.CreditDisabled)
            {
                AddConnectionCreditLocked((int)stream.Buffered);
                stream.Buffered = 0;
                FlushOutputLocked();
            }
        }
    }

    private void AddConnectionCreditLocked(int bytes)
    {
        if (bytes <= 0)
        {
            return;
        }

        _connectionPendingCredit += bytes;
        int half = _options.InitialConnectionWindowSize / 2;
        // Batch at half the window. When streams that are not being read hold most of the window, wait no longer:
        // otherwise the streams that are being read would stall behind them.
        if ((_connectionPendingCredit >= half || _connectionReceiveWindow < half / 2) && CanWriteControlLocked())
        {
            Http2FrameWriter.WriteWindowUpdate(_output, 0, _connectionPendingCredit);
            _connectionReceiveWindow += _connectionPendingCredit;
            _connectionPendingCredit = 0;
        }
    }

    private async Task WriteLoopAsync()
    {
        PipeReader output = _outputPipe.Reader;
        try
        {
            while (true)
            {
                ReadResult result = await output.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                if (!buffer.IsEmpty)
                {
                    foreach (ReadOnlyMemory<byte> segment in buffer)
                    {
                        await _transport.WriteAsync(segment, _abortCts.Token).ConfigureAwait(false);
                    }

                    await _transport.FlushAsync(_abortCts.Token).ConfigureAwait(false);
                }

                long sent = buffer.Length;
                output.AdvanceTo(buffer.End);
                OnOutputSent(sent);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            // Not here: this loop may be running inline inside a producer's call, under the connection lock; failing the
            // connection completes every stream's input and waiters, which belongs on a thread of its own.
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Connection.OnTransportFailed(s.Error), (Connection: this, Error: ex), preferLocal: false);
        }
        finally
        {
            await output.CompleteAsync().ConfigureAwait(false);
        }
    }

    private void OnOutputSent(long bytes)
    {
        lock (_lock)
        {
            _unsentBytes -= bytes;
            if (_drainWaiter is not null && _unsentBytes <= OutputLowWater)
            {
                _drainWaiter.TrySetResult();
                _drainWaiter = null;
            }
        }
    }

    private void OnTransportFailed(Exception ex)
    {
        List<Http2Stream> failed;
        bool expected;
        lock (_lock)
        {
            expected = _closing;
            _closing = true;
            _failureCode ??= Http2ErrorCode.Cancel;
            CompleteOutputLocked();
            failed = DetachAllStreamsLocked();
        }

        if (!expected)
        {
            Http2Log.TransportClosed(_logger, Role, ex.Message);
        }

        _abortCts.Cancel();
        FailStreams(failed, new Http2StreamException(Http2ErrorCode.Cancel, false, "The HTTP/2 connection's transport failed: " + ex.Message));
    }

    private static string StatusText(int status) => status switch
    {
        200 => "200",
        400 => "400",
        401 => "401",
        503 => "503",
        _ => status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
