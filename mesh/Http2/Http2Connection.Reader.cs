using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Ambient.Mesh.Http2.Frames;
using Ambient.Mesh.Http2.Hpack;

namespace Ambient.Mesh.Http2;

public sealed partial class Http2Connection
{
    /// <summary>Transport reads land in pooled buffers this large (TLS hands over up to 16 KiB records at a time).</summary>
    private const int ReadBufferSize = 64 * 1024;

    private readonly Http2FloodGuard _flood = new();

    // Header block reassembly (HEADERS + CONTINUATION), read loop only.
    private byte[] _headerBlock;
    private int _headerBlockLength;
    private int _headerStreamId;
    private bool _headerEndStream;
    private bool _headerSelfDependent;
    private int _continuationStreamId;
    private bool _prefaceReceived;
    private bool _firstFrameReceived;

    /// <summary>A compressed block this much above the list limit cannot decode to an acceptable list; stop buffering.</summary>
    private int MaxHeaderBlockSize => _options.MaxHeaderListSize + 16 * 1024;

    private async Task ReadLoopAsync()
    {
        PipeReader reader = PipeReader.Create(_transport, new StreamPipeReaderOptions(bufferSize: ReadBufferSize, minimumReadSize: 16 * 1024, leaveOpen: true));
        try
        {
            while (true)
            {
                ReadResult result = await reader.ReadAsync(_abortCts.Token).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                try
                {
                    if (IsOutputClosed())
                    {
                        // Closing: nothing the peer sends can change the outcome any more.
                        buffer = buffer.Slice(buffer.End);
                    }
                    else
                    {
                        ProcessBuffer(ref buffer);
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCompleted)
                {
                    OnPeerClosed(buffer.IsEmpty ? "peer closed the connection" : "peer closed the connection mid-frame");
                    break;
                }
            }
        }
        catch (Http2ProtocolException ex)
        {
            Fail(ex.Code, ex.Message);
            await DrainAsync(reader).ConfigureAwait(false);
        }
        catch (HpackException ex)
        {
            // Section 4.3: a decoding error leaves the tables out of step, which only closing the connection can fix.
            Fail(Http2ErrorCode.CompressionError, ex.Message);
            await DrainAsync(reader).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            OnTransportFailed(ex);
        }
        catch (Exception ex)
        {
            Http2Log.UnexpectedError(_logger, Role, ex);
            Fail(Http2ErrorCode.InternalError, "internal error");
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            byte[] block = _headerBlock;
            _headerBlock = [];
            if (block.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(block);
            }
        }
    }

    private async Task DrainAsync(PipeReader reader)
    {
        try
        {
            while (true)
            {
                ReadResult result = await reader.ReadAsync(_abortCts.Token).ConfigureAwait(false);
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The transport is being closed under us: that is how draining ends.
        }
    }

    private bool IsOutputClosed()
    {
        lock (_lock)
        {
            return _outputCompleted;
        }
    }

    private void OnPeerClosed(string reason)
    {
        List<Http2Stream> failed;
        lock (_lock)
        {
            _closing = true;
            CompleteOutputLocked();
            failed = DetachAllStreamsLocked();
        }

        Http2Log.TransportClosed(_logger, Role, reason);
        FailStreams(failed, new Http2StreamException(_failureCode ?? Http2ErrorCode.Cancel, false, "The HTTP/2 connection was closed by the peer."));
    }

    private void ProcessBuffer(ref ReadOnlySequence<byte> buffer)
    {
        if (_isServer && !_prefaceReceived)
        {
            ReadOnlySpan<byte> preface = ClientPreface;
            int available = (int)Math.Min(buffer.Length, preface.Length);
            Span<byte> received = stackalloc byte[preface.Length];
            buffer.Slice(0, available).CopyTo(received);
            if (!received[..available].SequenceEqual(preface[..available]))
            {
                throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, "Invalid HTTP/2 connection preface.");
            }

            if (available < preface.Length)
            {
                return;
            }

            buffer = buffer.Slice(preface.Length);
            _prefaceReceived = true;
        }

        while (buffer.Length >= Http2FrameHeader.Size)
        {
            Http2FrameHeader header = Http2FrameHeader.Read(buffer);
            if (header.Length > _options.MaxFrameSize)
            {
                // Checked before the payload arrives so an oversized frame never gets buffered.
                throw new Http2ProtocolException(Http2ErrorCode.FrameSizeError, $"Frame of {header.Length} bytes exceeds SETTINGS_MAX_FRAME_SIZE {_options.MaxFrameSize}.");
            }

            long frameSize = Http2FrameHeader.Size + header.Length;
            if (buffer.Length < frameSize)
            {
                return;
            }

            ProcessFrame(header, buffer.Slice(Http2FrameHeader.Size, header.Length));
            buffer = buffer.Slice(frameSize);
        }
    }

    private void ProcessFrame(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (!_firstFrameReceived)
        {
            // Section 3.4: the peer's preface ends with a SETTINGS frame, which must come first.
            if (header.Type != Http2FrameType.Settings || header.HasFlag(Http2FrameFlags.Ack))
            {
                throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, "The first frame must be SETTINGS.");
            }

            _firstFrameReceived = true;
        }

        if (_continuationStreamId != 0 && header.Type != Http2FrameType.Continuation)
        {
            throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"Expected CONTINUATION for stream {_continuationStreamId}, got {header.Type}.");
        }

        switch (header.Type)
        {
            case Http2FrameType.Data:
                OnData(header, payload);
                break;
            case Http2FrameType.Headers:
                OnHeaders(header, payload);
                break;
            case Http2FrameType.Priority:
                OnPriority(header, payload);
                break;
            case Http2FrameType.RstStream:
                OnRstStream(header, payload);
                break;
            case Http2FrameType.Settings:
                OnSettings(header, payload);
                break;
            case Http2FrameType.PushPromise:
                // We send SETTINGS_ENABLE_PUSH=0, and a server can never receive a push (section 6.6).
                throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, "PUSH_PROMISE is not allowed.");
            case Http2FrameType.Ping:
                OnPing(header, payload);
                break;
            case Http2FrameType.GoAway:
                OnGoAway(header, payload);
                break;
            case Http2FrameType.WindowUpdate:
                OnWindowUpdate(header, payload);
                break;
            case Http2FrameType.Continuation:
                OnContinuation(header, payload);
                break;
            default:
                // Unknown types are ignored (section 5.5), but they still cost us a parse.
                CheckFlood(_flood.OnEmpty(), "unknown frames");
                break;
        }
    }

    private static void CheckFlood(bool withinBudget, string what)
    {
        if (!withinBudget)
        {
            throw new Http2ProtocolException(Http2ErrorCode.EnhanceYourCalm, $"Too many {what}.");
        }
    }

    private static void RequireStream(Http2FrameHeader header)
    {
        if (header.StreamId == 0)
        {
            throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"{header.Type} on stream 0.");
        }
    }

    private static void RequireConnection(Http2FrameHeader header)
    {
        if (header.StreamId != 0)
        {
            throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"{header.Type} on stream {header.StreamId}.");
        }
    }

    private static uint ReadUInt32(in ReadOnlySequence<byte> payload, int offset)
    {
        Span<byte> tmp = stackalloc byte[4];
        payload.Slice(offset, 4).CopyTo(tmp);
        return BinaryPrimitives.ReadUInt32BigEndian(tmp);
    }

    private static byte FirstByte(in ReadOnlySequence<byte> payload) => payload.FirstSpan[0];

    private bool IsIdleLocked(int streamId)
    {
        bool peerInitiated = _isServer ? (streamId & 1) == 1 : (streamId & 1) == 0;
        return peerInitiated ? streamId > _lastPeerStreamId : streamId >= _nextStreamId;
    }

    private void OnData(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        RequireStream(header);
        int length = header.Length;
        ReadOnlySequence<byte> data = payload;
        if (header.HasFlag(Http2FrameFlags.Padded))
        {
            if (length < 1 || FirstByte(payload) >= length)
            {
                throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, "DATA padding exceeds the frame.");
            }

            data = payload.Slice(1, length - 1 - FirstByte(payload));
        }

        bool endStream = header.HasFlag(Http2FrameFlags.EndStream);
        if (length == 0 && !endStream)
        {
            CheckFlood(_flood.OnEmpty(), "empty DATA frames");
        }

        int dataLength = (int)data.Length;
        Http2Stream? target = null;
        Http2ErrorCode? streamError = null;
        lock (_lock)
        {
            // The whole payload, padding included, counts against flow control (section 6.9).
            _connectionReceiveWindow -= length;
            if (_connectionReceiveWindow < 0)
            {
                throw new Http2ProtocolException(Http2ErrorCode.FlowControlError, "DATA exceeds the connection window.");
            }

            if (!_streams.TryGetValue(header.StreamId, out Http2Stream? stream))
            {
                if (IsIdleLocked(header.StreamId))
                {
                    throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"DATA on idle stream {header.StreamId}.");
                }

                // A stream we closed or reset: frames in flight are ignored (section 5.1), their window returned.
                AddConnectionCreditLocked(length);
            }
            else if (stream.RemoteEnded)
            {
                AddConnectionCreditLocked(length);
                streamError = Http2ErrorCode.StreamClosed;
            }
            else if (stream.IsClient && !stream.ResponseHeadersReceived)
            {
                AddConnectionCreditLocked(length);
                streamError = Http2ErrorCode.ProtocolError;
            }
            else
            {
                stream.ReceiveWindow -= length;
                if (stream.ReceiveWindow < 0)
                {
                    AddConnectionCreditLocked(length);
                    streamError = Http2ErrorCode.FlowControlError;
                }
                else
                {
                    int unread = stream.InputAbandoned ? length : length - dataLength;
                    if (unread > 0)
                    {
                        // Padding, or data nobody will read: credit it back now.
                        AddConnectionCreditLocked(unread);
                        AddStreamCreditLocked(stream, unread);
                    }

                    if (!stream.InputAbandoned)
                    {
                        stream.Buffered += dataLength;
                    }

                    stream.RemoteEnded = endStream;
                    target = stream;
                }
            }

            FlushOutputLocked();
        }

        if (streamError is { } code)
        {
            SendStreamError(header.StreamId, code, $"DATA not allowed ({code})");
            return;
        }

        if (target is null)
        {
            return;
        }

        if (dataLength > 0)
        {
            target.WriteInput(data);
        }

        if (endStream)
        {
            target.CompleteInput(null);
            lock (_lock)
            {
                CloseStreamIfDoneLocked(target);
            }
        }
    }

    private void AddStreamCreditLocked(Http2Stream stream, int bytes)
    {
        if (stream.RemoteEnded || stream.IsClosed)
        {
            return;
        }

        stream.PendingCredit += bytes;
        if (stream.PendingCredit >= _options.InitialStreamWindowSize / 2 && CanWriteControlLocked())
        {
            Http2FrameWriter.WriteWindowUpdate(_output, stream.Id, stream.PendingCredit);
            stream.ReceiveWindow += stream.PendingCredit;
            stream.PendingCredit = 0;
        }
    }

    private void OnHeaders(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        RequireStream(header);
        int offset = 0;
        int padding = 0;
        if (header.HasFlag(Http2FrameFlags.Padded))
        {
            if (header.Length < 1)
            {
                throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, "HEADERS too short for its padding.");
            }

            padding = FirstByte(payload);
            offset = 1;
        }

        bool selfDependent = false;
        if (header.HasFlag(Http2FrameFlags.Priority))
        {
            if (header.Length < offset + 5)
            {
                throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, "HEADERS too short for its priority.");
            }

            // Priority signals are deprecated (RFC 9113 section 5.3.2) and ignored, except for this sanity rule.
            selfDependent = (int)(ReadUInt32(payload, offset) & 0x7FFFFFFF) == header.StreamId;
            offset += 5;
        }

        int fragmentLength = header.Length - offset - padding;
        if (fragmentLength < 0)
        {
            throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, "HEADERS padding exceeds the frame.");
        }

        bool endHeaders = header.HasFlag(Http2FrameFlags.EndHeaders);
        if (fragmentLength == 0 && !endHeaders)
        {
            CheckFlood(_flood.OnEmpty(), "empty header fragments");
        }

        _headerBlockLength = 0;
        _headerStreamId = header.StreamId;
        _headerEndStream = header.HasFlag(Http2FrameFlags.EndStream);
        _headerSelfDependent = selfDependent;
        AppendHeaderFragment(payload.Slice(offset, fragmentLength));
        if (endHeaders)
        {
            ProcessHeaderBlock();
        }
        else
        {
            _continuationStreamId = header.StreamId;
        }
    }

    private void OnContinuation(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (_continuationStreamId == 0 || header.StreamId != _continuationStreamId)
        {
            throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"Unexpected CONTINUATION on stream {header.StreamId}.");
        }

        bool endHeaders = header.HasFlag(Http2FrameFlags.EndHeaders);
        if (header.Length == 0 && !endHeaders)
        {
            CheckFlood(_flood.OnEmpty(), "empty CONTINUATION frames");
        }

        AppendHeaderFragment(payload);
        if (endHeaders)
        {
            _continuationStreamId = 0;
            ProcessHeaderBlock();
        }
    }

    private void AppendHeaderFragment(in ReadOnlySequence<byte> fragment)
    {
        int needed = _headerBlockLength + (int)fragment.Length;
        if (needed > MaxHeaderBlockSize)
        {
            // The CONTINUATION flood (CVE-2024-27316 family): refuse to buffer more; the HPACK context is lost with it,
            // so this has to end the connection (RFC 9113 section 10.5.1).
            throw new Http2ProtocolException(Http2ErrorCode.EnhanceYourCalm, $"Header block larger than {MaxHeaderBlockSize} bytes.");
        }

        if (needed > _headerBlock.Length)
        {
            byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _headerBlock.Length * 2));
            _headerBlock.AsSpan(0, _headerBlockLength).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_headerBlock);
            _headerBlock = bigger;
        }

        fragment.CopyTo(_headerBlock.AsSpan(_headerBlockLength));
        _headerBlockLength = needed;
    }

    private void ProcessHeaderBlock()
    {
        var headers = new List<HeaderField>(8);
        bool withinLimit = _decoder.Decode(_headerBlock.AsSpan(0, _headerBlockLength), headers, _options.MaxHeaderListSize);
        _headerBlockLength = 0;
        int id = _headerStreamId;
        bool endStream = _headerEndStream;
        if (_isServer)
        {
            OnRequestHeaders(id, headers, withinLimit, endStream);
        }
        else
        {
            OnResponseHeaders(id, headers, withinLimit, endStream);
        }
    }

    private void OnRequestHeaders(int id, List<HeaderField> headers, bool withinLimit, bool endStream)
    {
        Http2Stream? stream;
        lock (_lock)
        {
            _streams.TryGetValue(id, out stream);
        }

        if (stream is not null)
        {
            OnTrailers(stream, headers, withinLimit, endStream);
            return;
        }

        if ((id & 1) == 0)
        {
            throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"Client opened even stream {id}.");
        }

        Http2ErrorCode? refuse = null;
        string? reason = null;
        lock (_lock)
        {
            if (id <= _lastPeerStreamId)
            {
                // Frames on a stream we reset are ignored (section 5.1). Otherwise the stream closed normally, or the
                // id went backwards (section 5.1.1): both are connection errors.
                if (WasRecentlyResetLocked(id))
                {
                    return;
                }

                throw new Http2ProtocolException(
                    id == _lastPeerStreamId ? Http2ErrorCode.StreamClosed : Http2ErrorCode.ProtocolError,
                    $"HEADERS on closed stream {id}.");
            }

            _lastPeerStreamId = id;
            if (_goAwaySent || _closing)
            {
                refuse = Http2ErrorCode.RefusedStream;
                reason = "connection is shutting down";
            }
            else if (_streams.Count >= _options.MaxConcurrentStreams)
            {
                refuse = Http2ErrorCode.RefusedStream;
                reason = "SETTINGS_MAX_CONCURRENT_STREAMS exceeded";
            }
            else if (!withinLimit)
            {
                // Section 10.5.1: answer 431 (Request Header Fields Too Large) rather than break the connection.
                if (CanWriteControlLocked())
                {
                    WriteHeadersLocked(id, new HeaderField(":status", "431"), null, endStream: true);
                    if (!endStream)
                    {
                        Http2FrameWriter.WriteRstStream(_output, id, Http2ErrorCode.NoError);
                        NoteResetLocked(id);
                    }

                    FlushOutputLocked();
                }

                return;
            }
            else if (_headerSelfDependent)
            {
                refuse = Http2ErrorCode.ProtocolError;
                reason = "stream depends on itself";
            }
            else if (Http2HeaderValidator.ValidateRequest(headers, extendedConnect: true) is { } invalid)
            {
                refuse = Http2ErrorCode.ProtocolError;
                reason = "malformed request: " + invalid;
            }
            else
            {
                stream = new Http2Stream(this, id, isClient: false, headers, _peerInitialWindowSize, _options.InitialStreamWindowSize)
                {
                    RemoteEnded = endStream,
                };
                _streams.Add(id, stream);
                _totalStreams++;
                _lastActiveTicks = Environment.TickCount64;
            }
        }

        if (refuse is { } code)
        {
            SendStreamError(id, code, reason!);
            return;
        }

        if (endStream)
        {
            stream!.CompleteInput(null);
        }

        ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.Connection.RunHandlerAsync(s), stream!, preferLocal: false);
    }

    private async Task RunHandlerAsync(Http2Stream stream)
    {
        try
        {
            await _onStream!(stream).ConfigureAwait(false);
        }
        catch (Http2StreamException ex)
        {
            // The stream was reset or the connection went away under the handler: routine for tunnels.
            Http2Log.HandlerStreamEnded(_logger, stream.Id, ex.Message);
            stream.Reset(Http2ErrorCode.Cancel);
        }
        catch (Exception ex)
        {
            Http2Log.HandlerFailed(_logger, stream.Id, ex);
            stream.Reset(Http2ErrorCode.InternalError);
        }
    }

    private void OnResponseHeaders(int id, List<HeaderField> headers, bool withinLimit, bool endStream)
    {
        Http2Stream? stream;
        lock (_lock)
        {
            if (!_streams.TryGetValue(id, out stream))
            {
                if ((id & 1) == 0 || IsIdleLocked(id))
                {
                    throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"HEADERS on idle stream {id}.");
                }

                return; // a stream we already closed or reset
            }
        }

        bool responseReceived;
        lock (_lock)
        {
            responseReceived = stream.ResponseHeadersReceived;
        }

        if (responseReceived)
        {
            OnTrailers(stream, headers, withinLimit, endStream);
            return;
        }

        if (!withinLimit)
        {
            SendStreamError(id, Http2ErrorCode.Cancel, "response header list too large");
            return;
        }

        if (Http2HeaderValidator.ValidateResponse(headers, out int status, out List<HeaderField> regular) is { } invalid)
        {
            SendStreamError(id, Http2ErrorCode.ProtocolError, "malformed response: " + invalid);
            return;
        }

        if (status < 200)
        {
            // Interim responses precede the real one; 101 does not exist in HTTP/2 (section 8.6).
            if (endStream || status == 101)
            {
                SendStreamError(id, Http2ErrorCode.ProtocolError, "invalid informational response");
            }

            return;
        }

        lock (_lock)
        {
            stream.ResponseHeadersReceived = true;
            stream.RemoteEnded = endStream;
        }

        stream.SetResponse(new Http2Response(status, regular));
        if (endStream)
        {
            stream.CompleteInput(null);
            lock (_lock)
            {
                CloseStreamIfDoneLocked(stream);
            }
        }
    }

    private void OnTrailers(Http2Stream stream, List<HeaderField> headers, bool withinLimit, bool endStream)
    {
        bool remoteEnded;
        lock (_lock)
        {
            remoteEnded = stream.RemoteEnded;
        }

        if (remoteEnded)
        {
            SendStreamError(stream.Id, Http2ErrorCode.StreamClosed, "HEADERS after END_STREAM");
            return;
        }

        if (!endStream || !withinLimit || Http2HeaderValidator.ValidateTrailers(headers) is not null)
        {
            SendStreamError(stream.Id, Http2ErrorCode.ProtocolError, "malformed trailers");
            return;
        }

        // Tunnels carry no trailers worth surfacing; they just end the stream.
        lock (_lock)
        {
            stream.RemoteEnded = true;
        }

        stream.CompleteInput(null);
        lock (_lock)
        {
            CloseStreamIfDoneLocked(stream);
        }
    }

    /// <summary>Stream error (section 5.4.2): RST_STREAM, and fail the stream locally if we still track it.</summary>
    private void SendStreamError(int id, Http2ErrorCode code, string reason)
    {
        // Each one costs us a frame: a peer provoking many of them is flooding us.
        CheckFlood(_flood.OnReset(), "stream errors");
        Http2Stream? stream;
        lock (_lock)
        {
            if (CanWriteControlLocked())
            {
                Http2FrameWriter.WriteRstStream(_output, id, code);
                FlushOutputLocked();
            }

            if (_streams.TryGetValue(id, out stream))
            {
                DetachStreamLocked(stream);
            }
            else
            {
                NoteResetLocked(id);
            }
        }

        Http2Log.StreamError(_logger, id, code, reason);
        stream?.OnClosed(new Http2StreamException(code, false, $"HTTP/2 stream {id} error {code}: {reason}"));
    }

    private void OnPriority(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        RequireStream(header);
        CheckFlood(_flood.OnPriority(), "PRIORITY frames");
        if (header.Length != 5)
        {
            SendStreamError(header.StreamId, Http2ErrorCode.FrameSizeError, "PRIORITY length must be 5");
            return;
        }

        if ((int)(ReadUInt32(payload, 0) & 0x7FFFFFFF) == header.StreamId)
        {
            SendStreamError(header.StreamId, Http2ErrorCode.ProtocolError, "stream depends on itself");
        }
    }

    private void OnRstStream(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        RequireStream(header);
        if (header.Length != 4)
        {
            throw new Http2ProtocolException(Http2ErrorCode.FrameSizeError, "RST_STREAM length must be 4.");
        }

        // Rapid reset: opening and cancelling streams costs us far more than it costs the peer.
        CheckFlood(_flood.OnReset(), "RST_STREAM frames");
        var code = (Http2ErrorCode)ReadUInt32(payload, 0);
        Http2Stream? stream;
        lock (_lock)
        {
            if (!_streams.TryGetValue(header.StreamId, out stream))
            {
                if (IsIdleLocked(header.StreamId))
                {
                    throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"RST_STREAM on idle stream {header.StreamId}.");
                }

                return;
            }

            DetachStreamLocked(stream);
            FlushOutputLocked();
        }

        Http2Log.StreamReset(_logger, stream.Id, "peer", code);
        stream.OnClosed(new Http2StreamException(code, true, $"HTTP/2 stream {stream.Id} was reset by the peer ({code})."));
    }

    private void OnSettings(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        RequireConnection(header);
        if (header.HasFlag(Http2FrameFlags.Ack))
        {
            if (header.Length != 0)
            {
                throw new Http2ProtocolException(Http2ErrorCode.FrameSizeError, "SETTINGS ACK with a payload.");
            }

            lock (_lock)
            {
                if (_unackedSettings > 0)
                {
                    _unackedSettings--;
                }
            }

            // Our smaller table size (if configured) binds the peer only from now on (section 6.5.3).
            _decoder.MaxAllowedTableSize = _options.HeaderTableSize;
            return;
        }

        if (header.Length % 6 != 0)
        {
            throw new Http2ProtocolException(Http2ErrorCode.FrameSizeError, "SETTINGS length is not a multiple of 6.");
        }

        CheckFlood(_flood.OnControl(), "SETTINGS frames");
        var reader = new SequenceReader<byte>(payload);
        lock (_lock)
        {
            while (reader.TryReadBigEndian(out short rawId) && reader.TryReadBigEndian(out int rawValue))
            {
                ApplySettingLocked((Http2SettingsParameter)(ushort)rawId, (uint)rawValue);
            }

            _peerSettingsReceived = true;
            if (CanWriteControlLocked())
            {
                Http2FrameWriter.WriteSettingsAck(_output);
                FlushOutputLocked();
            }
        }
    }

    private void ApplySettingLocked(Http2SettingsParameter id, uint value)
    {
        switch (id)
        {
            case Http2SettingsParameter.HeaderTableSize:
                _encoder.SetPeerMaxTableSize((int)Math.Min(value, int.MaxValue));
                break;
            case Http2SettingsParameter.EnablePush:
                if (value > 1 || (value == 1 && !_isServer))
                {
                    throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"Invalid SETTINGS_ENABLE_PUSH {value}.");
                }

                break;
            case Http2SettingsParameter.MaxConcurrentStreams:
                _peerMaxConcurrentStreams = value;
                break;
            case Http2SettingsParameter.InitialWindowSize:
                if (value > MaxWindowSize)
                {
                    throw new Http2ProtocolException(Http2ErrorCode.FlowControlError, $"SETTINGS_INITIAL_WINDOW_SIZE {value} exceeds 2^31-1.");
                }

                // Section 6.9.2: the change applies to every open stream's window, which may go negative.
                long delta = (long)value - _peerInitialWindowSize;
                _peerInitialWindowSize = (int)value;
                foreach (Http2Stream stream in _streams.Values)
                {
                    stream.SendWindow += delta;
                    if (stream.SendWindow > MaxWindowSize)
                    {
                        throw new Http2ProtocolException(Http2ErrorCode.FlowControlError, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window.");
                    }

                    if (delta > 0)
                    {
                        stream.WindowWaiter?.TrySetResult();
                        stream.WindowWaiter = null;
                    }
                }

                break;
            case Http2SettingsParameter.MaxFrameSize:
                if (value < Http2FrameHeader.MinMaxFrameSize || value > Http2FrameHeader.MaxMaxFrameSize)
                {
                    throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"Invalid SETTINGS_MAX_FRAME_SIZE {value}.");
                }

                _peerMaxFrameSize = (int)value;
                break;
            case Http2SettingsParameter.EnableConnectProtocol:
                if (value > 1)
                {
                    throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"Invalid SETTINGS_ENABLE_CONNECT_PROTOCOL {value}.");
                }

                _peerEnabledConnectProtocol = value == 1;
                break;
            default:
                // MAX_HEADER_LIST_SIZE is advisory; unknown settings must be ignored (section 6.5.2).
                break;
        }
    }

    private void OnPing(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        RequireConnection(header);
        if (header.Length != 8)
        {
            throw new Http2ProtocolException(Http2ErrorCode.FrameSizeError, "PING length must be 8.");
        }

        if (header.HasFlag(Http2FrameFlags.Ack))
        {
            return;
        }

        CheckFlood(_flood.OnControl(), "PING frames");
        Span<byte> opaque = stackalloc byte[8];
        payload.CopyTo(opaque);
        lock (_lock)
        {
            if (CanWriteControlLocked())
            {
                Http2FrameWriter.WritePing(_output, opaque, ack: true);
                FlushOutputLocked();
            }
        }
    }

    private void OnGoAway(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        RequireConnection(header);
        if (header.Length < 8)
        {
            throw new Http2ProtocolException(Http2ErrorCode.FrameSizeError, "GOAWAY shorter than 8 bytes.");
        }

        int lastStreamId = (int)(ReadUInt32(payload, 0) & 0x7FFFFFFF);
        var code = (Http2ErrorCode)ReadUInt32(payload, 4);
        List<Http2Stream>? refused = null;
        lock (_lock)
        {
            _goAwayReceived = true;
            _goAwayReceivedLastStreamId = Math.Min(_goAwayReceivedLastStreamId, lastStreamId);
            if (!_isServer)
            {
                // Streams above last-stream-id were never processed (section 6.8): safe to retry elsewhere.
                foreach (Http2Stream stream in _streams.Values)
                {
                    if (stream.Id > lastStreamId)
                    {
                        (refused ??= []).Add(stream);
                    }
                }

                if (refused is not null)
                {
                    foreach (Http2Stream stream in refused)
                    {
                        DetachStreamLocked(stream);
                    }
                }
            }

            CloseIfIdleLocked();
            FlushOutputLocked();
        }

        Http2Log.GoAwayReceived(_logger, Role, lastStreamId, code);
        if (refused is not null)
        {
            FailStreams(refused, new Http2StreamException(Http2ErrorCode.RefusedStream, true, "The peer sent GOAWAY before processing this stream; it can be retried."));
        }
    }

    private void OnWindowUpdate(Http2FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.Length != 4)
        {
            throw new Http2ProtocolException(Http2ErrorCode.FrameSizeError, "WINDOW_UPDATE length must be 4.");
        }

        int increment = (int)(ReadUInt32(payload, 0) & 0x7FFFFFFF);
        if (header.StreamId == 0)
        {
            if (increment == 0)
            {
                throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, "WINDOW_UPDATE with increment 0.");
            }

            lock (_lock)
            {
                _connectionSendWindow += increment;
                if (_connectionSendWindow > MaxWindowSize)
                {
                    throw new Http2ProtocolException(Http2ErrorCode.FlowControlError, "Connection window exceeds 2^31-1.");
                }

                foreach (Http2Stream stream in _connectionWindowWaiters)
                {
                    stream.WindowWaiter?.TrySetResult();
                    stream.WindowWaiter = null;
                }

                _connectionWindowWaiters.Clear();
            }

            return;
        }

        Http2ErrorCode? streamError = null;
        lock (_lock)
        {
            if (!_streams.TryGetValue(header.StreamId, out Http2Stream? stream))
            {
                if (IsIdleLocked(header.StreamId))
                {
                    throw new Http2ProtocolException(Http2ErrorCode.ProtocolError, $"WINDOW_UPDATE on idle stream {header.StreamId}.");
                }

                return;
            }

            if (increment == 0)
            {
                streamError = Http2ErrorCode.ProtocolError;
            }
            else
            {
                stream.SendWindow += increment;
                if (stream.SendWindow > MaxWindowSize)
                {
                    streamError = Http2ErrorCode.FlowControlError;
                }
                else
                {
                    stream.WindowWaiter?.TrySetResult();
                    stream.WindowWaiter = null;
                }
            }
        }

        if (streamError is { } code)
        {
            SendStreamError(header.StreamId, code, "invalid WINDOW_UPDATE");
        }
    }
}
