using Ambient.Mesh.Http2;
using Ambient.Mesh.Http2.Frames;

namespace Ambient.Mesh.Tests.Http2;

/// <summary>Raw bytes against our server (and client): each violation gets the RFC 9113 error code.</summary>
public sealed class Http2FramingTests
{
    private static readonly TimeSpan s_timeout = Http2TestUtil.Timeout;

    private static async Task AssertGoAwayAsync(Http2ErrorCode expected, Func<RawPeer, Task> send, Http2Options? options = null, Func<Http2Stream, Task>? onStream = null)
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync(options, onStream);
        await using (peer)
        await using (server)
        {
            await send(peer);
            Assert.Equal(expected, await peer.ExpectGoAwayAsync());
            // After a connection error the server completes once the peer has gone (or after a short grace).
            await peer.DisposeAsync();
            await server.Completion.WaitAsync(s_timeout);
        }
    }

    private static async Task AssertRstAsync(int streamId, Http2ErrorCode expected, Func<RawPeer, Task> send, Http2Options? options = null, Func<Http2Stream, Task>? onStream = null)
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync(options, onStream);
        await using (peer)
        await using (server)
        {
            await send(peer);
            Assert.Equal(expected, await peer.ExpectRstAsync(streamId));
            // A stream error leaves the connection usable.
            await peer.SendFrameAsync(Http2FrameType.Ping, Http2FrameFlags.None, 0, new byte[8]);
            await peer.ExpectAsync(f => f.Type == Http2FrameType.Ping && f.Flags == Http2FrameFlags.Ack, "PING ACK");
            Assert.False(server.Completion.IsCompleted);
        }
    }

    [Fact]
    public async Task ServerSendsSettingsAndAcksOurs()
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync();
        await using (peer)
        await using (server)
        {
            RawFrame settings = await peer.ExpectAsync(f => f.Type == Http2FrameType.Settings && f.Flags == Http2FrameFlags.None, "SETTINGS");
            Assert.Equal(0, settings.Payload.Length % 6);
            RawFrame update = await peer.ExpectAsync(f => f.Type == Http2FrameType.WindowUpdate, "WINDOW_UPDATE");
            Assert.Equal(16 * 1024 * 1024 - 65535, (int)RawPeer.UInt32Of(update.Payload));
            await peer.ExpectAsync(f => f.Type == Http2FrameType.Settings && f.Flags == Http2FrameFlags.Ack, "SETTINGS ACK");
        }
    }

    [Fact]
    public async Task PingIsAnsweredWithTheSamePayload()
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync();
        await using (peer)
        await using (server)
        {
            byte[] opaque = [1, 2, 3, 4, 5, 6, 7, 8];
            await peer.SendFrameAsync(Http2FrameType.Ping, Http2FrameFlags.None, 0, opaque);
            RawFrame ack = await peer.ExpectAsync(f => f.Type == Http2FrameType.Ping, "PING ACK");
            Assert.Equal(Http2FrameFlags.Ack, ack.Flags);
            Assert.Equal(opaque, ack.Payload);
        }
    }

    [Fact]
    public async Task UnknownFrameTypesAndPriorityAreIgnored()
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync();
        await using (peer)
        await using (server)
        {
            await peer.SendFrameAsync((Http2FrameType)0xEE, Http2FrameFlags.None, 0, [1, 2, 3]);
            await peer.SendFrameAsync((Http2FrameType)0xEE, Http2FrameFlags.None, 7, []);
            await peer.SendFrameAsync(Http2FrameType.Priority, Http2FrameFlags.None, 9, [0, 0, 0, 1, 16]);
            await peer.SendConnectAsync(1);
            RawFrame response = await peer.ExpectAsync(f => f.Type == Http2FrameType.Headers, "response HEADERS");
            Assert.Equal(1, response.StreamId);
        }
    }

    [Fact]
    public Task BadPrefaceIsProtocolError() =>
        AssertPrefaceRejectedAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());

    private static async Task AssertPrefaceRejectedAsync(byte[] bytes)
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync(sendPreface: false);
        await using (peer)
        await using (server)
        {
            await peer.SendAsync(bytes);
            Assert.Equal(Http2ErrorCode.ProtocolError, await peer.ExpectGoAwayAsync());
            await server.Completion.WaitAsync(s_timeout);
        }
    }

    [Fact]
    public async Task SilentClientTimesOut()
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync(new Http2Options { HandshakeTimeout = TimeSpan.FromMilliseconds(200) }, sendPreface: false);
        await using (peer)
        await using (server)
        {
            await server.Completion.WaitAsync(s_timeout);
            Assert.True(server.IsClosing);
        }
    }

    [Fact]
    public Task FirstFrameMustBeSettings()
    {
        return Run();

        static async Task Run()
        {
            var (peer, server) = await RawPeer.ConnectToServerAsync(sendPreface: false);
            await using (peer)
            await using (server)
            {
                await peer.SendAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
                await peer.SendFrameAsync(Http2FrameType.Ping, Http2FrameFlags.None, 0, new byte[8]);
                Assert.Equal(Http2ErrorCode.ProtocolError, await peer.ExpectGoAwayAsync());
            }
        }
    }

    [Fact]
    public Task DataOnStreamZero() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError,
        p => p.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.None, 0, [1, 2, 3]));

    [Fact]
    public Task DataOnIdleStream() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError,
        p => p.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.None, 5, [1, 2, 3]));

    [Fact]
    public Task FrameLargerThanMaxFrameSize() => AssertGoAwayAsync(Http2ErrorCode.FrameSizeError,
        p => p.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.None, 1, [], declaredLength: 1024 * 1024 + 1));

    [Fact]
    public Task PingWithWrongLength() => AssertGoAwayAsync(Http2ErrorCode.FrameSizeError,
        p => p.SendFrameAsync(Http2FrameType.Ping, Http2FrameFlags.None, 0, new byte[7]));

    [Fact]
    public Task PingOnStream() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError,
        p => p.SendFrameAsync(Http2FrameType.Ping, Http2FrameFlags.None, 1, new byte[8]));

    [Fact]
    public Task SettingsWithBadLength() => AssertGoAwayAsync(Http2ErrorCode.FrameSizeError,
        p => p.SendFrameAsync(Http2FrameType.Settings, Http2FrameFlags.None, 0, new byte[5]));

    [Fact]
    public Task SettingsAckWithPayload() => AssertGoAwayAsync(Http2ErrorCode.FrameSizeError,
        p => p.SendFrameAsync(Http2FrameType.Settings, Http2FrameFlags.Ack, 0, new byte[6]));

    [Fact]
    public Task InitialWindowSizeAboveMaximum() => AssertGoAwayAsync(Http2ErrorCode.FlowControlError,
        p => p.SendFrameAsync(Http2FrameType.Settings, Http2FrameFlags.None, 0, [0, 4, 0x80, 0, 0, 0]));

    [Fact]
    public Task MaxFrameSizeBelowMinimum() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError,
        p => p.SendFrameAsync(Http2FrameType.Settings, Http2FrameFlags.None, 0, [0, 5, 0, 0, 0x10, 0]));

    [Fact]
    public Task ConnectionWindowOverflow() => AssertGoAwayAsync(Http2ErrorCode.FlowControlError,
        p => p.SendFrameAsync(Http2FrameType.WindowUpdate, Http2FrameFlags.None, 0, RawPeer.UInt32(0x7FFFFFFF)));

    [Fact]
    public Task WindowUpdateZeroOnConnection() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError,
        p => p.SendFrameAsync(Http2FrameType.WindowUpdate, Http2FrameFlags.None, 0, RawPeer.UInt32(0)));

    [Fact]
    public Task StreamWindowOverflow() => AssertRstAsync(1, Http2ErrorCode.FlowControlError, async p =>
    {
        await p.SendConnectAsync(1);
        await p.SendFrameAsync(Http2FrameType.WindowUpdate, Http2FrameFlags.None, 1, RawPeer.UInt32(0x7FFFFFFF));
    });

    [Fact]
    public Task DataBeyondStreamWindow() => AssertRstAsync(1, Http2ErrorCode.FlowControlError, async p =>
    {
        await p.SendConnectAsync(1);
        await p.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.None, 1, new byte[70_000]);
    }, new Http2Options { InitialStreamWindowSize = 65535 });

    [Fact]
    public Task DataBeyondConnectionWindow() => AssertGoAwayAsync(Http2ErrorCode.FlowControlError, async p =>
    {
        await p.SendConnectAsync(1);
        await p.SendConnectAsync(3);
        await p.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.None, 1, new byte[60_000]);
        await p.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.None, 3, new byte[60_000]);
    }, new Http2Options { InitialConnectionWindowSize = 100_000 }, NeverReads);

    /// <summary>Accepts the stream but never consumes input, so no window credit goes back during the test.</summary>
    private static async Task NeverReads(Http2Stream stream)
    {
        await stream.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
        await stream.Completion;
    }

    [Fact]
    public Task PaddingLongerThanFrame() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError, async p =>
    {
        await p.SendConnectAsync(1);
        await p.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.Padded, 1, [5, 1, 2]);
    });

    [Fact]
    public Task ContinuationInterleavedWithOtherFrame() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError, async p =>
    {
        byte[] block = p.EncodeHeaders(Http2TestUtil.Connect("a:1"));
        await p.SendFrameAsync(Http2FrameType.Headers, Http2FrameFlags.None, 1, block[..2]);
        await p.SendFrameAsync(Http2FrameType.Ping, Http2FrameFlags.None, 0, new byte[8]);
    });

    [Fact]
    public Task ContinuationOnAnotherStream() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError, async p =>
    {
        byte[] block = p.EncodeHeaders(Http2TestUtil.Connect("a:1"));
        await p.SendFrameAsync(Http2FrameType.Headers, Http2FrameFlags.None, 1, block[..2]);
        await p.SendFrameAsync(Http2FrameType.Continuation, Http2FrameFlags.EndHeaders, 3, block[2..]);
    });

    [Fact]
    public Task ContinuationWithoutHeaders() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError,
        p => p.SendFrameAsync(Http2FrameType.Continuation, Http2FrameFlags.EndHeaders, 1, [0x82]));

    [Fact]
    public async Task HeadersSplitAcrossContinuationsWork()
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync();
        await using (peer)
        await using (server)
        {
            byte[] block = peer.EncodeHeaders([.. Http2TestUtil.Connect("10.0.0.1:80"), new("x-long", new string('v', 3000))]);
            await peer.SendFrameAsync(Http2FrameType.Headers, Http2FrameFlags.None, 1, block[..10]);
            await peer.SendFrameAsync(Http2FrameType.Continuation, Http2FrameFlags.None, 1, block[10..100]);
            await peer.SendFrameAsync(Http2FrameType.Continuation, Http2FrameFlags.EndHeaders, 1, block[100..]);
            RawFrame response = await peer.ExpectAsync(f => f.Type == Http2FrameType.Headers, "response");
            Assert.Equal(1, response.StreamId);
        }
    }

    [Fact]
    public Task EvenStreamFromClient() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError, p => p.SendConnectAsync(2));

    [Fact]
    public Task StreamIdGoingBackwards() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError, async p =>
    {
        await p.SendConnectAsync(5);
        await p.SendConnectAsync(3);
    });

    [Fact]
    public Task PushPromiseToServer() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError, async p =>
    {
        await p.SendConnectAsync(1);
        await p.SendFrameAsync(Http2FrameType.PushPromise, Http2FrameFlags.EndHeaders, 1, [0, 0, 0, 2, 0x82]);
    });

    [Fact]
    public Task GarbageHpackIsCompressionError() => AssertGoAwayAsync(Http2ErrorCode.CompressionError,
        p => p.SendFrameAsync(Http2FrameType.Headers, Http2FrameFlags.EndHeaders, 1, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]));

    [Fact]
    public Task RstStreamOnIdleStream() => AssertGoAwayAsync(Http2ErrorCode.ProtocolError,
        p => p.SendFrameAsync(Http2FrameType.RstStream, Http2FrameFlags.None, 1, RawPeer.UInt32(8)));

    [Fact]
    public Task RstStreamWithWrongLength() => AssertGoAwayAsync(Http2ErrorCode.FrameSizeError, async p =>
    {
        await p.SendConnectAsync(1);
        await p.SendFrameAsync(Http2FrameType.RstStream, Http2FrameFlags.None, 1, new byte[3]);
    });

    [Fact]
    public async Task DataAfterEndStreamIsStreamClosed()
    {
        // The server keeps its side open, so the stream is half-closed (remote) when the second DATA arrives: a
        // stream error STREAM_CLOSED. (With the echo handler the server could end its side first; a stream closed
        // both ways is forgotten and late frames on it are ignored, which made this test race.)
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await AssertRstAsync(1, Http2ErrorCode.StreamClosed, async p =>
            {
                await p.SendConnectAsync(1);
                await p.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.EndStream, 1, [1]);
                await p.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.None, 1, [2]);
            }, new Http2Options(), async stream =>
            {
                await stream.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None);
                await hold.Task;
            });
        }
        finally
        {
            hold.TrySetResult();
        }
    }

    [Fact]
    public Task UppercaseHeaderName() => AssertRstAsync(1, Http2ErrorCode.ProtocolError,
        p => p.SendHeadersAsync(1, false, [.. Http2TestUtil.Connect("a:1"), new("X-Upper", "1")]));

    [Fact]
    public Task ConnectionSpecificHeader() => AssertRstAsync(1, Http2ErrorCode.ProtocolError,
        p => p.SendHeadersAsync(1, false, [.. Http2TestUtil.Connect("a:1"), new("connection", "keep-alive")]));

    [Fact]
    public Task ConnectWithPath() => AssertRstAsync(1, Http2ErrorCode.ProtocolError,
        p => p.SendHeadersAsync(1, false, [.. Http2TestUtil.Connect("a:1"), new(":path", "/")]));

    [Fact]
    public Task ConnectWithoutAuthority() => AssertRstAsync(1, Http2ErrorCode.ProtocolError,
        p => p.SendHeadersAsync(1, false, new HeaderField(":method", "CONNECT")));

    [Fact]
    public Task GetWithoutPath() => AssertRstAsync(1, Http2ErrorCode.ProtocolError,
        p => p.SendHeadersAsync(1, true, new HeaderField(":method", "GET"), new HeaderField(":scheme", "http")));

    [Fact]
    public Task PseudoHeaderAfterRegular() => AssertRstAsync(1, Http2ErrorCode.ProtocolError,
        p => p.SendHeadersAsync(1, false, new HeaderField(":method", "CONNECT"), new HeaderField("x-a", "1"), new HeaderField(":authority", "a:1")));

    [Fact]
    public async Task ExtendedConnectIsAccepted()
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync();
        await using (peer)
        await using (server)
        {
            await peer.SendHeadersAsync(1, false, new(":method", "CONNECT"), new(":protocol", "websocket"), new(":scheme", "http"), new(":path", "/chat"), new(":authority", "a:1"));
            RawFrame response = await peer.ExpectAsync(f => f.Type is Http2FrameType.Headers or Http2FrameType.RstStream, "response");
            Assert.Equal(Http2FrameType.Headers, response.Type);
        }
    }

    [Fact]
    public async Task TooManyStreamsAreRefused()
    {
        var hold = new TaskCompletionSource();
        var (peer, server) = await RawPeer.ConnectToServerAsync(new Http2Options { MaxConcurrentStreams = 2 }, async s =>
        {
            await s.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
            await hold.Task;
        });
        await using (peer)
        await using (server)
        {
            await peer.SendConnectAsync(1);
            await peer.SendConnectAsync(3);
            await peer.SendConnectAsync(5);
            Assert.Equal(Http2ErrorCode.RefusedStream, await peer.ExpectRstAsync(5));
            Assert.Equal(2, server.ActiveStreams);
            hold.SetResult();
        }
    }

    [Fact]
    public async Task OversizedHeaderListGets431()
    {
        var (peer, server) = await RawPeer.ConnectToServerAsync(new Http2Options { MaxHeaderListSize = 4096 });
        await using (peer)
        await using (server)
        {
            await peer.SendHeadersAsync(1, false, [.. Http2TestUtil.Connect("a:1"), new("x-big", new string('b', 5000))]);
            RawFrame response = await peer.ExpectAsync(f => f.Type == Http2FrameType.Headers, "431");
            Assert.True(response.Flags.HasFlag(Http2FrameFlags.EndStream));
            Assert.Equal(Http2ErrorCode.NoError, await peer.ExpectRstAsync(1));
            Assert.Equal(0, server.ActiveStreams);

            // The HPACK context survived: the next request on the same connection works.
            await peer.SendConnectAsync(3);
            RawFrame ok = await peer.ExpectAsync(f => f.Type == Http2FrameType.Headers && f.StreamId == 3, "200");
            Assert.Equal(3, ok.StreamId);
        }
    }

    [Fact]
    public Task HeaderBlockFloodIsCut() => AssertGoAwayAsync(Http2ErrorCode.EnhanceYourCalm, async p =>
    {
        await p.SendFrameAsync(Http2FrameType.Headers, Http2FrameFlags.None, 1, new byte[16000]);
        for (int i = 0; i < 10; i++)
        {
            await p.SendFrameAsync(Http2FrameType.Continuation, Http2FrameFlags.None, 1, new byte[16000]);
        }
    }, new Http2Options { MaxHeaderListSize = 8192 });

    [Fact]
    public Task RapidResetIsCut() => AssertGoAwayAsync(Http2ErrorCode.EnhanceYourCalm, async p =>
    {
        var batch = new MemoryStream();
        for (int id = 1; id < 1000; id += 2)
        {
            byte[] block = p.EncodeHeaders(Http2TestUtil.Connect("a:1"));
            WriteFrame(batch, Http2FrameType.Headers, Http2FrameFlags.EndHeaders, id, block);
            WriteFrame(batch, Http2FrameType.RstStream, Http2FrameFlags.None, id, RawPeer.UInt32((uint)Http2ErrorCode.Cancel));
        }

        await p.SendAsync(batch.ToArray());
    });

    [Fact]
    public Task PingFloodIsCut() => AssertGoAwayAsync(Http2ErrorCode.EnhanceYourCalm, async p =>
    {
        var batch = new MemoryStream();
        for (int i = 0; i < 1000; i++)
        {
            WriteFrame(batch, Http2FrameType.Ping, Http2FrameFlags.None, 0, new byte[8]);
        }

        await p.SendAsync(batch.ToArray());
    });

    [Fact]
    public Task EmptyDataFloodIsCut() => AssertGoAwayAsync(Http2ErrorCode.EnhanceYourCalm, async p =>
    {
        var batch = new MemoryStream();
        WriteFrame(batch, Http2FrameType.Headers, Http2FrameFlags.EndHeaders, 1, p.EncodeHeaders(Http2TestUtil.Connect("a:1")));
        for (int i = 0; i < 1000; i++)
        {
            WriteFrame(batch, Http2FrameType.Data, Http2FrameFlags.None, 1, []);
        }

        await p.SendAsync(batch.ToArray());
    });

    [Fact]
    public async Task ClientRejectsPushPromise()
    {
        var (peer, client) = await RawPeer.ConnectToClientAsync();
        await using (peer)
        await using (client)
        {
            Http2Stream stream = await client.OpenStreamAsync(Http2TestUtil.Connect("a:1"), CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await peer.ExpectAsync(f => f.Type == Http2FrameType.Headers, "request");
            await peer.SendFrameAsync(Http2FrameType.PushPromise, Http2FrameFlags.EndHeaders, 1, [0, 0, 0, 2, 0x82]);
            Assert.Equal(Http2ErrorCode.ProtocolError, await peer.ExpectGoAwayAsync());
            await Assert.ThrowsAsync<Http2StreamException>(() => stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout));
            await client.Completion.WaitAsync(s_timeout);
        }
    }

    [Fact]
    public async Task ClientSendsConnectPseudoHeadersOnly()
    {
        var (peer, client) = await RawPeer.ConnectToClientAsync();
        await using (peer)
        await using (client)
        {
            await client.OpenStreamAsync([.. Http2TestUtil.Connect("10.0.0.9:15008"), new("forwarded", "for=\"10.0.0.1:3333\"")], CancellationToken.None).AsTask().WaitAsync(s_timeout);
            RawFrame settings = await peer.ExpectAsync(f => f.Type == Http2FrameType.Settings, "client SETTINGS");
            Assert.Contains((ushort)Http2SettingsParameter.EnablePush, SettingIds(settings.Payload));
            RawFrame request = await peer.ExpectAsync(f => f.Type == Http2FrameType.Headers, "request");
            Assert.Equal(1, request.StreamId);
            Assert.True(request.Flags.HasFlag(Http2FrameFlags.EndHeaders));
            Assert.False(request.Flags.HasFlag(Http2FrameFlags.EndStream));
            var decoder = new Ambient.Mesh.Http2.Hpack.HpackDecoder(4096);
            var fields = new List<HeaderField>();
            decoder.Decode(request.Payload, fields, 65536);
            Assert.Equal([new(":method", "CONNECT"), new(":authority", "10.0.0.9:15008"), new("forwarded", "for=\"10.0.0.1:3333\"")], fields);
        }
    }

    [Fact]
    public async Task GoAwayRefusesStreamsAboveLastStreamId()
    {
        var (peer, client) = await RawPeer.ConnectToClientAsync();
        await using (peer)
        await using (client)
        {
            Http2Stream s1 = await client.OpenStreamAsync(Http2TestUtil.Connect("a:1"), CancellationToken.None).AsTask().WaitAsync(s_timeout);
            Http2Stream s3 = await client.OpenStreamAsync(Http2TestUtil.Connect("a:1"), CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await peer.ExpectAsync(f => f.Type == Http2FrameType.Headers && f.StreamId == 3, "second request");
            await peer.SendFrameAsync(Http2FrameType.GoAway, Http2FrameFlags.None, 0, [0, 0, 0, 1, 0, 0, 0, 0]);

            var refused = await Assert.ThrowsAsync<Http2StreamException>(() => s3.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout));
            Assert.Equal(Http2ErrorCode.RefusedStream, refused.Code);
            Assert.False(client.CanOpenStream);
            Assert.True(client.IsClosing);
            Assert.Equal(1, client.ActiveStreams);

            // Stream 1 was processed and still completes normally.
            await peer.SendHeadersAsync(1, true, new HeaderField(":status", "200"));
            Assert.Equal(200, (await s1.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout)).Status);
            await s1.CompleteWritesAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await client.Completion.WaitAsync(s_timeout);
        }
    }

    [Fact]
    public async Task ClientHonoursPeerWindowAndInitialWindowChanges()
    {
        var (peer, client) = await RawPeer.ConnectToClientAsync();
        await using (peer)
        await using (client)
        {
            // Shrink the stream window to 1000 bytes.
            await peer.SendFrameAsync(Http2FrameType.Settings, Http2FrameFlags.None, 0, [0, 4, 0, 0, 0x03, 0xE8]);
            // One ACK for the empty SETTINGS sent at connect, one for this.
            await peer.ExpectAsync(f => f.Type == Http2FrameType.Settings && f.Flags == Http2FrameFlags.Ack, "ACK");
            await peer.ExpectAsync(f => f.Type == Http2FrameType.Settings && f.Flags == Http2FrameFlags.Ack, "ACK");
            Http2Stream stream = await client.OpenStreamAsync(Http2TestUtil.Connect("a:1"), CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await peer.SendHeadersAsync(1, false, new HeaderField(":status", "200"));
            Task write = stream.WriteAsync(new byte[3000], CancellationToken.None).AsTask();
            RawFrame first = await peer.ExpectAsync(f => f.Type == Http2FrameType.Data, "DATA");
            Assert.Equal(1000, first.Payload.Length);
            Assert.False(write.IsCompleted);

            // Growing the initial window applies to the open stream (section 6.9.2).
            await peer.SendFrameAsync(Http2FrameType.Settings, Http2FrameFlags.None, 0, [0, 4, 0, 0, 0x07, 0xD0]);
            RawFrame second = await peer.ExpectAsync(f => f.Type == Http2FrameType.Data, "DATA");
            Assert.Equal(1000, second.Payload.Length);
            await peer.SendFrameAsync(Http2FrameType.WindowUpdate, Http2FrameFlags.None, 1, RawPeer.UInt32(5000));
            RawFrame third = await peer.ExpectAsync(f => f.Type == Http2FrameType.Data, "DATA");
            Assert.Equal(1000, third.Payload.Length);
            await write.WaitAsync(s_timeout);
        }
    }

    [Fact]
    public async Task ReceiverReturnsCreditInBatches()
    {
        var (peer, client) = await RawPeer.ConnectToClientAsync(new Http2Options { InitialStreamWindowSize = 100_000, InitialConnectionWindowSize = 1_000_000 });
        await using (peer)
        await using (client)
        {
            Http2Stream stream = await client.OpenStreamAsync(Http2TestUtil.Connect("a:1"), CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await peer.SendHeadersAsync(1, false, new HeaderField(":status", "200"));
            await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            for (int i = 0; i < 10; i++)
            {
                await peer.SendFrameAsync(Http2FrameType.Data, Http2FrameFlags.None, 1, new byte[6000]);
            }

            int consumed = 0;
            while (consumed < 60_000)
            {
                var result = await stream.Input.ReadAsync().AsTask().WaitAsync(s_timeout);
                consumed += (int)result.Buffer.Length;
                stream.Input.AdvanceTo(result.Buffer.End);
            }

            // 60 000 consumed of a 100 000 window: exactly one stream WINDOW_UPDATE (at >= 50 000), not one per frame.
            RawFrame update = await peer.ExpectAsync(f => f.Type == Http2FrameType.WindowUpdate && f.StreamId == 1, "stream WINDOW_UPDATE");
            Assert.True(RawPeer.UInt32Of(update.Payload) >= 50_000);
        }
    }

    private static List<ushort> SettingIds(byte[] payload)
    {
        var ids = new List<ushort>();
        for (int i = 0; i + 6 <= payload.Length; i += 6)
        {
            ids.Add((ushort)((payload[i] << 8) | payload[i + 1]));
        }

        return ids;
    }

    private static void WriteFrame(MemoryStream target, Http2FrameType type, Http2FrameFlags flags, int streamId, byte[] payload)
    {
        byte[] header = new byte[9];
        Http2FrameHeader.Write(header, payload.Length, type, flags, streamId);
        target.Write(header);
        target.Write(payload);
    }
}
