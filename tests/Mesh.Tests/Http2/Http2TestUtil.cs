using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Http2.Frames;
using Ambient.Mesh.Http2.Hpack;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Mesh.Tests.Http2;

internal static class Http2TestUtil
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static async Task<(NetworkStream Client, NetworkStream Server)> CreateTcpPairAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Task connect = client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        Socket server = await listener.AcceptSocketAsync().WaitAsync(Timeout);
        await connect.WaitAsync(Timeout);
        server.NoDelay = true;
        return (new NetworkStream(client, ownsSocket: true), new NetworkStream(server, ownsSocket: true));
    }

    /// <summary>A started client and server connected over loopback TCP (h2c).</summary>
    public static async Task<(Http2Connection Client, Http2Connection Server)> CreatePairAsync(
        Func<Http2Stream, Task> onStream, Http2Options? serverOptions = null, Http2Options? clientOptions = null)
    {
        var (c, s) = await CreateTcpPairAsync();
        var server = Http2Connection.CreateServer(s, serverOptions ?? new Http2Options(), onStream, TestLogger.Instance);
        var client = Http2Connection.CreateClient(c, clientOptions ?? new Http2Options(), TestLogger.Instance);
        server.Start();
        client.Start();
        return (client, server);
    }

    public static HeaderField[] Connect(string authority) => [new(":method", "CONNECT"), new(":authority", authority)];

    /// <summary>Server handler: 200, then echo everything until the client half-closes, then half-close.</summary>
    public static async Task EchoHandler(Http2Stream stream)
    {
        await stream.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None);
        await CopyAsync(stream.Input, stream);
        await stream.CompleteWritesAsync(CancellationToken.None);
    }

    /// <summary>Echo without sending headers (the handler already did).</summary>
    public static async Task EchoHandler2(Http2Stream stream)
    {
        await CopyAsync(stream.Input, stream);
        await stream.CompleteWritesAsync(CancellationToken.None);
    }

    public static async Task CopyAsync(PipeReader input, Http2Stream output)
    {
        while (true)
        {
            ReadResult result = await input.ReadAsync().AsTask().WaitAsync(Timeout);
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                await output.WriteAsync(segment, CancellationToken.None).AsTask().WaitAsync(Timeout);
            }

            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    public static async Task<byte[]> ReadAllAsync(PipeReader input)
    {
        var ms = new MemoryStream();
        while (true)
        {
            ReadResult result = await input.ReadAsync().AsTask().WaitAsync(Timeout);
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                ms.Write(segment.Span);
            }

            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return ms.ToArray();
            }
        }
    }

    public static async Task WriteChunkedAsync(Http2Stream stream, byte[] data, int chunk)
    {
        for (int i = 0; i < data.Length; i += chunk)
        {
            await stream.WriteAsync(data.AsMemory(i, Math.Min(chunk, data.Length - i)), CancellationToken.None).AsTask().WaitAsync(Timeout);
        }
    }
}

internal sealed record RawFrame(Http2FrameType Type, Http2FrameFlags Flags, int StreamId, byte[] Payload)
{
    public Http2ErrorCode ErrorCode => (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Type == Http2FrameType.GoAway ? Payload.AsSpan(4) : Payload);
}

/// <summary>A hand-driven HTTP/2 peer that writes raw bytes, for testing how our side reacts to malformed input.</summary>
internal sealed class RawPeer(NetworkStream stream) : IAsyncDisposable
{
    private readonly HpackEncoder _encoder = new(useHuffman: false);
    private readonly byte[] _header = new byte[9];

    public NetworkStream Stream => stream;

    /// <summary>Our server on one end, a raw client (preface + empty SETTINGS already sent) on the other.</summary>
    public static async Task<(RawPeer Peer, Http2Connection Server)> ConnectToServerAsync(Http2Options? options = null, Func<Http2Stream, Task>? onStream = null, bool sendPreface = true)
    {
        var (c, s) = await Http2TestUtil.CreateTcpPairAsync();
        var server = Http2Connection.CreateServer(s, options ?? new Http2Options(), onStream ?? Http2TestUtil.EchoHandler, TestLogger.Instance);
        server.Start();
        var peer = new RawPeer(c);
        if (sendPreface)
        {
            await peer.SendAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
            await peer.SendFrameAsync(Http2FrameType.Settings, Http2FrameFlags.None, 0, []);
        }

        return (peer, server);
    }

    /// <summary>Our client on one end, a raw server (SETTINGS already sent) on the other; the client preface is consumed.</summary>
    public static async Task<(RawPeer Peer, Http2Connection Client)> ConnectToClientAsync(Http2Options? options = null)
    {
        var (c, s) = await Http2TestUtil.CreateTcpPairAsync();
        var client = Http2Connection.CreateClient(c, options ?? new Http2Options(), TestLogger.Instance);
        client.Start();
        var peer = new RawPeer(s);
        byte[] preface = new byte[24];
        await s.ReadExactlyAsync(preface).AsTask().WaitAsync(Http2TestUtil.Timeout);
        await peer.SendFrameAsync(Http2FrameType.Settings, Http2FrameFlags.None, 0, []);
        return (peer, client);
    }

    public Task SendAsync(byte[] bytes) => stream.WriteAsync(bytes).AsTask().WaitAsync(Http2TestUtil.Timeout);

    public Task SendFrameAsync(Http2FrameType type, Http2FrameFlags flags, int streamId, byte[] payload) =>
        SendFrameAsync(type, flags, streamId, payload, payload.Length);

    /// <summary>Sends a frame whose header claims <paramref name="declaredLength"/>.</summary>
    public Task SendFrameAsync(Http2FrameType type, Http2FrameFlags flags, int streamId, byte[] payload, int declaredLength)
    {
        byte[] frame = new byte[9 + payload.Length];
        Http2FrameHeader.Write(frame, declaredLength, type, flags, streamId);
        payload.CopyTo(frame, 9);
        return SendAsync(frame);
    }

    public byte[] EncodeHeaders(params HeaderField[] fields)
    {
        var buffer = new byte[16384];
        int n = _encoder.BeginBlock(buffer);
        foreach (HeaderField f in fields)
        {
            n += _encoder.EncodeField(f, buffer.AsSpan(n));
        }

        return buffer[..n];
    }

    public Task SendHeadersAsync(int streamId, bool endStream, params HeaderField[] fields) =>
        SendFrameAsync(Http2FrameType.Headers, Http2FrameFlags.EndHeaders | (endStream ? Http2FrameFlags.EndStream : 0), streamId, EncodeHeaders(fields));

    public Task SendConnectAsync(int streamId) => SendHeadersAsync(streamId, false, Http2TestUtil.Connect("10.0.0.1:80"));

    public static byte[] UInt32(uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        return b;
    }

    public static uint UInt32Of(byte[] payload) => BinaryPrimitives.ReadUInt32BigEndian(payload);

    /// <summary>The next frame, or null at end of stream.</summary>
    public async Task<RawFrame?> ReadFrameAsync()
    {
        try
        {
            await stream.ReadExactlyAsync(_header).AsTask().WaitAsync(Http2TestUtil.Timeout);
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException)
        {
            return null;
        }

        Http2FrameHeader h = Http2FrameHeader.Read(_header);
        byte[] payload = new byte[h.Length];
        await stream.ReadExactlyAsync(payload).AsTask().WaitAsync(Http2TestUtil.Timeout);
        return new RawFrame(h.Type, h.Flags, h.StreamId, payload);
    }

    /// <summary>Reads until a frame matches; fails at end of stream.</summary>
    public async Task<RawFrame> ExpectAsync(Func<RawFrame, bool> match, string what)
    {
        while (true)
        {
            RawFrame? frame = await ReadFrameAsync();
            Assert.True(frame is not null, $"connection closed before {what}");
            if (match(frame!))
            {
                return frame!;
            }
        }
    }

    public async Task<Http2ErrorCode> ExpectGoAwayAsync()
    {
        RawFrame f = await ExpectAsync(f => f.Type == Http2FrameType.GoAway, "GOAWAY");
        return f.ErrorCode;
    }

    public async Task<Http2ErrorCode> ExpectRstAsync(int streamId)
    {
        RawFrame f = await ExpectAsync(f => f.Type == Http2FrameType.RstStream && f.StreamId == streamId || f.Type == Http2FrameType.GoAway, $"RST_STREAM on {streamId}");
        Assert.Equal(Http2FrameType.RstStream, f.Type);
        return f.ErrorCode;
    }

    public ValueTask DisposeAsync() => stream.DisposeAsync();
}
