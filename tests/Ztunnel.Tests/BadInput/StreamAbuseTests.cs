using System.Net;
using Ambient.Mesh.Http2;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.BadInput;

/// <summary>
/// Well-formed HTTP/2 used to exhaust the agent: huge header lists, too many streams, rapid reset (CVE-2023-44487),
/// endless CONTINUATION (CVE-2024-27316). Each must be refused at the right granularity while other work goes on.
/// </summary>
public sealed class StreamAbuseTests
{
    private const int DefaultFrame = 16_384;

    [Fact]
    public async Task A_header_list_over_64_KiB_is_refused_with_431_and_the_connection_keeps_working()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        await using var raw = await RawHttp2Client.ConnectAsync(BadInputAssertions.Hbone(mesh), pki.Root, pki.Issue(MeshPki.Id("bigheaders")));
        await raw.HandshakeAsync();

        // 70 KiB of header value: over the 64 KiB list limit, split over HEADERS + CONTINUATION as a real client would.
        var block = RawHttp2Client.ConnectHeaders(mesh.Echo.EndPoint, ("x-padding", new string('a', 70 * 1024)));
        await raw.WriteRawAsync(HeaderBlockFrames(1, block, endHeaders: true));

        // Section 10.5.1: a request whose header list is too large may be answered 431 rather than the connection
        // being torn down, since the HPACK state stays intact.
        Assert.Equal(431, await BadInputAssertions.ResponseStatusAsync(raw, 1));
        Assert.Equal(0, mesh.Echo.Accepted);

        await raw.OpenConnectAsync(3, mesh.Echo.EndPoint);
        Assert.Equal(200, await BadInputAssertions.ResponseStatusAsync(raw, 3));
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    [Fact]
    public async Task A_header_block_that_never_ends_is_cut_off_with_goaway()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        await using var raw = await RawHttp2Client.ConnectAsync(BadInputAssertions.Hbone(mesh), pki.Root, pki.Issue(MeshPki.Id("continuation")));
        await raw.HandshakeAsync();
        var reader = raw.ReadUntilGoAwayAsync();

        // 4 MiB of CONTINUATION that never sets END_HEADERS: the agent must stop buffering long before the end.
        var chunk = new byte[DefaultFrame];
        await WriteUntilRefusedAsync(raw, reader, Enumerable.Range(0, 256).Select(i => i == 0
            ? RawHttp2Client.Frame(RawFrame.Headers, 0, 1, RawHttp2Client.ConnectHeaders(mesh.Echo.EndPoint))
            : RawHttp2Client.Frame(RawFrame.Continuation, 0, 1, chunk)));

        var goAway = await reader.WaitAsync(RawHttp2Client.Timeout * 2);
        Assert.True(goAway is not null, $"no GOAWAY; connection ended by {raw.ClosedBy}");
        Assert.NotEqual(Http2ErrorCode.NoError, goAway.ErrorCode);
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    [Fact]
    public async Task Streams_beyond_max_concurrent_streams_are_refused_while_the_first_ones_work()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        await using var raw = await RawHttp2Client.ConnectAsync(BadInputAssertions.Hbone(mesh), pki.Root, pki.Issue(MeshPki.Id("flooder")));
        await raw.HandshakeAsync();
        Assert.True(raw.ServerSettings.TryGetValue(0x3, out uint advertised), "agent must advertise SETTINGS_MAX_CONCURRENT_STREAMS");
        int limit = (int)advertised;
        Assert.InRange(limit, 1, 1000);
        const int extra = 20;

        // Sent in one burst: every HEADERS arrives before any tunnel could have closed.
        var burst = new List<byte>();
        for (int i = 0; i < limit + extra; i++)
        {
            burst.AddRange(RawHttp2Client.Frame(RawFrame.Headers, RawFrame.EndHeaders, 1 + 2 * i, RawHttp2Client.ConnectHeaders(mesh.Echo.EndPoint)));
        }
        await raw.WriteRawAsync([.. burst]);

        var outcome = new Dictionary<int, int>(); // stream -> status, or -code for RST_STREAM
        while (outcome.Count < limit + extra && await raw.ReadFrameAsync() is { } frame)
        {
            Assert.False(frame.Type == RawFrame.GoAway, $"GOAWAY {frame}: a stream flood must be refused per stream, not by killing the connection");
            if (frame.Type == RawFrame.Headers)
            {
                outcome[frame.StreamId] = raw.Status(frame);
            }
            else if (frame.Type == RawFrame.RstStream)
            {
                outcome[frame.StreamId] = -(int)frame.ErrorCode;
            }
        }

        Assert.Equal(limit + extra, outcome.Count);
        for (int i = 0; i < limit + extra; i++)
        {
            int expected = i < limit ? 200 : -(int)Http2ErrorCode.RefusedStream;
            Assert.True(outcome[1 + 2 * i] == expected, $"stream {1 + 2 * i}: got {outcome[1 + 2 * i]}, expected {expected}");
        }
        await TwoNodeMesh.EventuallyAsync(() => mesh.Echo.Accepted == limit, $"{limit} tunnels reached the app");

        // The accepted tunnels carry data.
        await raw.WriteFrameAsync(RawFrame.Data, 0, 1, "ping"u8);
        Assert.Equal("ping", await ReadDataAsync(raw, 1, 4));

        // It is a concurrency limit, not a total: once stream 1 is closed both ways, a new stream is accepted.
        await raw.WriteFrameAsync(RawFrame.Data, RawFrame.EndStream, 1, []);
        await ReadUntilEndStreamAsync(raw, 1);
        int next = 1 + 2 * (limit + extra);
        await raw.OpenConnectAsync(next, mesh.Echo.EndPoint);
        Assert.Equal(200, await BadInputAssertions.ResponseStatusAsync(raw, next));
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    [Fact]
    public async Task Rapid_reset_is_stopped_and_leaves_no_tunnels_behind()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        await using var raw = await RawHttp2Client.ConnectAsync(BadInputAssertions.Hbone(mesh), pki.Root, pki.Issue(MeshPki.Id("resetter")));
        await raw.HandshakeAsync();
        // Read concurrently: the agent may stop us mid-burst, and its GOAWAY must not be lost to a reset.
        var reader = ReadUntilGoAwayOrPingAckAsync(raw);

        // Open a tunnel and cancel it at once, 5000 times; then a PING so a server that keeps up still answers something.
        const int rounds = 5000;
        var frames = Enumerable.Range(0, rounds).Select(i => (byte[])
        [
            .. RawHttp2Client.Frame(RawFrame.Headers, RawFrame.EndHeaders, 1 + 2 * i, RawHttp2Client.ConnectHeaders(mesh.Echo.EndPoint)),
            .. RawHttp2Client.RstStream(1 + 2 * i, Http2ErrorCode.Cancel),
        ]).Append(RawHttp2Client.Frame(RawFrame.Ping, 0, 0, "rapidrst"u8));
        await WriteUntilRefusedAsync(raw, reader, frames);

        var last = await reader.WaitAsync(RawHttp2Client.Timeout * 2);
        Assert.True(last is not null, $"neither GOAWAY nor a PING answer; connection ended by {raw.ClosedBy}");
        if (last.Type == RawFrame.GoAway)
        {
            // The agent's choice: treat it as abuse (RFC 9113 section 10.5, "ENHANCE_YOUR_CALM").
            Assert.Equal(Http2ErrorCode.EnhanceYourCalm, last.ErrorCode);
        }
        // Otherwise it kept up with the burst and answered the PING behind it: also acceptable.

        // Either way no cancelled tunnel may stay open inside the agent, nor towards the app.
        await TwoNodeMesh.EventuallyAsync(() => mesh.NodeB.Connections.Count == 0, "no tracked tunnels left on node-b");
        Assert.Equal(0, await BadInputAssertions.GaugeAsync(mesh, "ambient_connections_active"));
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    private static async Task<RawFrame?> ReadUntilGoAwayOrPingAckAsync(RawHttp2Client raw)
    {
        while (await raw.ReadFrameAsync() is { } frame)
        {
            if (frame.Type == RawFrame.GoAway || (frame.Type == RawFrame.Ping && frame.Has(RawFrame.Ack)))
            {
                return frame;
            }
        }
        return null;
    }

    /// <summary>HEADERS then CONTINUATION frames of at most 16 KiB (the size every peer must accept).</summary>
    private static byte[] HeaderBlockFrames(int streamId, byte[] block, bool endHeaders)
    {
        var output = new List<byte>();
        for (int offset = 0; offset < block.Length; offset += DefaultFrame)
        {
            int n = Math.Min(DefaultFrame, block.Length - offset);
            bool last = offset + n >= block.Length;
            byte type = offset == 0 ? RawFrame.Headers : RawFrame.Continuation;
            output.AddRange(RawHttp2Client.Frame(type, last && endHeaders ? RawFrame.EndHeaders : (byte)0, streamId, block.AsSpan(offset, n)));
        }
        return [.. output];
    }

    /// <summary>
    /// Writes frames in 64 KiB batches while a reader runs, and stops once the reader is done (GOAWAY or close): a
    /// server that refuses mid-stream may reset the socket under our writes.
    /// </summary>
    private static async Task WriteUntilRefusedAsync(RawHttp2Client raw, Task reader, IEnumerable<byte[]> frames)
    {
        var batch = new List<byte>();
        try
        {
            foreach (var frame in frames)
            {
                batch.AddRange(frame);
                if (batch.Count < 64 * 1024)
                {
                    continue;
                }
                if (reader.IsCompleted)
                {
                    return;
                }
                await raw.WriteRawAsync([.. batch]);
                batch.Clear();
            }
            if (batch.Count > 0 && !reader.IsCompleted)
            {
                await raw.WriteRawAsync([.. batch]);
            }
        }
        catch (IOException)
        {
            // The agent closed the connection on us: the reader has what it sent before that.
        }
    }

    private static async Task<string> ReadDataAsync(RawHttp2Client raw, int streamId, int bytes)
    {
        var received = new List<byte>();
        while (received.Count < bytes && await raw.ReadFrameAsync() is { } frame)
        {
            if (frame.StreamId == streamId && frame.Type == RawFrame.Data)
            {
                received.AddRange(frame.Payload);
            }
        }
        return System.Text.Encoding.ASCII.GetString([.. received]);
    }

    private static async Task ReadUntilEndStreamAsync(RawHttp2Client raw, int streamId)
    {
        while (await raw.ReadFrameAsync() is { } frame)
        {
            if (frame.StreamId == streamId && frame.Has(RawFrame.EndStream) && frame.Type is RawFrame.Data or RawFrame.Headers)
            {
                return;
            }
            Assert.False(frame.StreamId == streamId && frame.Type == RawFrame.RstStream, $"stream {streamId} reset: {frame}");
        }
        Assert.Fail($"connection closed before stream {streamId} ended: {raw.ClosedBy}");
    }
}
