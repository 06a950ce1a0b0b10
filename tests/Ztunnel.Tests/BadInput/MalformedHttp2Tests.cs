using Ambient.Mesh.Http2;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.BadInput;

/// <summary>
/// A peer with a valid mesh certificate that then breaks HTTP/2. Each is a connection error (RFC 9113 section 5.4.1):
/// the agent must answer GOAWAY with the code the RFC names, close the connection, and carry on serving others.
/// </summary>
public sealed class MalformedHttp2Tests
{
    public static TheoryData<string, Http2ErrorCode> Cases => new()
    {
        // Section 3.4: an invalid preface is a connection error of type PROTOCOL_ERROR.
        { "bad preface", Http2ErrorCode.ProtocolError },
        // Section 4.2: a frame larger than our SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR.
        { "frame larger than SETTINGS_MAX_FRAME_SIZE", Http2ErrorCode.FrameSizeError },
        // Section 6.1: DATA on stream 0 is a PROTOCOL_ERROR.
        { "DATA on stream 0", Http2ErrorCode.ProtocolError },
        // RFC 7541 section 6.1: index 0 is a decoding error; section 4.3 of RFC 9113 makes it COMPRESSION_ERROR.
        { "HPACK index 0", Http2ErrorCode.CompressionError },
        // RFC 7541 section 2.3.3: an index past the static and (empty) dynamic table is a decoding error.
        { "HPACK index past the tables", Http2ErrorCode.CompressionError },
        // RFC 7541 section 5.2: a string literal longer than the block.
        { "HPACK truncated string", Http2ErrorCode.CompressionError },
        // Section 6.10: CONTINUATION not preceded by HEADERS/CONTINUATION without END_HEADERS is a PROTOCOL_ERROR.
        { "CONTINUATION without HEADERS", Http2ErrorCode.ProtocolError },
        // Section 6.10: any other frame between HEADERS without END_HEADERS and its CONTINUATION is a PROTOCOL_ERROR.
        { "PING between HEADERS and CONTINUATION", Http2ErrorCode.ProtocolError },
        // Section 5.1.1: a client may only open odd-numbered streams.
        { "HEADERS on an even stream", Http2ErrorCode.ProtocolError },
        // Section 6.5: a SETTINGS frame whose length is not a multiple of 6 is a FRAME_SIZE_ERROR.
        { "SETTINGS of 5 bytes", Http2ErrorCode.FrameSizeError },
        // Section 6.9: a connection WINDOW_UPDATE of 0 is a PROTOCOL_ERROR.
        { "WINDOW_UPDATE of 0 on the connection", Http2ErrorCode.ProtocolError },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Malformed_http2_gets_goaway_with_the_rfc_error_code_and_the_agent_keeps_serving(string input, Http2ErrorCode expected)
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        await using var raw = await RawHttp2Client.ConnectAsync(BadInputAssertions.Hbone(mesh), pki.Root, pki.Issue(MeshPki.Id("fuzzer")));
        if (input == "bad preface")
        {
            await raw.WriteRawAsync("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"u8.ToArray());
        }
        else
        {
            await raw.HandshakeAsync();
            await raw.WriteRawAsync(Malformed(input, raw.MaxFrameSize, mesh));
        }

        var goAway = await raw.ReadUntilGoAwayAsync();

        Assert.True(goAway is not null, $"{input}: no GOAWAY; connection ended by {raw.ClosedBy}");
        Assert.Equal(expected, goAway.ErrorCode);
        // After GOAWAY for a connection error the agent closes the connection (section 5.4.1).
        Assert.True(await raw.ReadsToEndAsync());
        Assert.Equal(0, mesh.Echo.Accepted);
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    private static byte[] Malformed(string input, int maxFrameSize, TwoNodeMesh mesh) => input switch
    {
        // Only the header: the length alone must trigger the error, before any payload is buffered.
        "frame larger than SETTINGS_MAX_FRAME_SIZE" => RawHttp2Client.Frame(RawFrame.Data, 0, 1, [], declaredLength: maxFrameSize + 1),
        "DATA on stream 0" => RawHttp2Client.Frame(RawFrame.Data, 0, 0, "hello"u8),
        "HPACK index 0" => RawHttp2Client.Frame(RawFrame.Headers, RawFrame.EndHeaders, 1, [0x80]),
        "HPACK index past the tables" => RawHttp2Client.Frame(RawFrame.Headers, RawFrame.EndHeaders, 1, [0xFF, 0x80, 0x01]), // index 255
        "HPACK truncated string" => RawHttp2Client.Frame(RawFrame.Headers, RawFrame.EndHeaders, 1, [0x00, 0x0A, (byte)'a', (byte)'b']),
        "CONTINUATION without HEADERS" => RawHttp2Client.Frame(RawFrame.Continuation, RawFrame.EndHeaders, 1, RawHttp2Client.ConnectHeaders(mesh.Echo.EndPoint)),
        "PING between HEADERS and CONTINUATION" =>
        [
            .. RawHttp2Client.Frame(RawFrame.Headers, 0, 1, RawHttp2Client.ConnectHeaders(mesh.Echo.EndPoint)),
            .. RawHttp2Client.Frame(RawFrame.Ping, 0, 0, new byte[8]),
        ],
        "HEADERS on an even stream" => RawHttp2Client.Frame(RawFrame.Headers, RawFrame.EndHeaders, 2, RawHttp2Client.ConnectHeaders(mesh.Echo.EndPoint)),
        "SETTINGS of 5 bytes" => RawHttp2Client.Frame(RawFrame.Settings, 0, 0, new byte[5]),
        "WINDOW_UPDATE of 0 on the connection" => RawHttp2Client.Frame(RawFrame.WindowUpdate, 0, 0, new byte[4]),
        _ => throw new ArgumentOutOfRangeException(nameof(input), input, null),
    };
}
