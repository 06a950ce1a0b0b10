using System.Text;
using Ambient.Mesh.Http2;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.BadInput;

/// <summary>
/// Header blocks that decode fine but are not valid HTTP/2 requests. RFC 9113 section 8.1.1: a malformed request is a
/// stream error of type PROTOCOL_ERROR, so the stream is reset, nothing is tunnelled, and the connection lives on.
/// </summary>
public sealed class MalformedRequestTests
{
    public static TheoryData<string> Requests =>
    [
        "CONNECT with :scheme and :path but no :protocol", // section 8.5
        "CONNECT without :authority",                        // section 8.5
        "uppercase header name",                             // section 8.2.1
        "connection-specific header",                        // section 8.2.2
        "pseudo-header after a regular header",              // section 8.3
        "duplicated :method",                                // section 8.3.1
        "unknown pseudo-header",                             // section 8.3
        "header value with a newline",                       // section 8.2.1
    ];

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task Malformed_request_is_reset_with_protocol_error_and_the_connection_keeps_working(string request)
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        await using var raw = await RawHttp2Client.ConnectAsync(BadInputAssertions.Hbone(mesh), pki.Root, pki.Issue(MeshPki.Id("malformed")));
        await raw.HandshakeAsync();
        var authority = mesh.Echo.EndPoint.ToString();
        (string, string)[] fields = request switch
        {
            "CONNECT with :scheme and :path but no :protocol" => [(":method", "CONNECT"), (":scheme", "https"), (":path", "/"), (":authority", authority)],
            "CONNECT without :authority" => [(":method", "CONNECT")],
            "uppercase header name" => [(":method", "CONNECT"), (":authority", authority), ("X-Upper", "1")],
            "connection-specific header" => [(":method", "CONNECT"), (":authority", authority), ("connection", "keep-alive")],
            "pseudo-header after a regular header" => [(":method", "CONNECT"), ("x-a", "1"), (":authority", authority)],
            "duplicated :method" => [(":method", "CONNECT"), (":method", "CONNECT"), (":authority", authority)],
            "unknown pseudo-header" => [(":method", "CONNECT"), (":authority", authority), (":tunnel", "yes")],
            _ => [(":method", "CONNECT"), (":authority", authority), ("x-a", "a\r\nx-injected: 1")],
        };

        await raw.WriteFrameAsync(RawFrame.Headers, RawFrame.EndHeaders, 1, Block(fields));
        int outcome = await BadInputAssertions.ResponseStatusAsync(raw, 1);

        Assert.True(outcome == -(int)Http2ErrorCode.ProtocolError, $"{request}: expected RST_STREAM PROTOCOL_ERROR, got {(outcome < 0 ? "RST_STREAM " + (Http2ErrorCode)(-outcome) : ":status " + outcome)}");
        Assert.Equal(0, mesh.Echo.Accepted);
        await raw.OpenConnectAsync(3, mesh.Echo.EndPoint);
        Assert.Equal(200, await BadInputAssertions.ResponseStatusAsync(raw, 3));
    }

    private static byte[] Block((string Name, string Value)[] fields)
    {
        var block = new MemoryStream();
        foreach (var (name, value) in fields)
        {
            // Literal without indexing, new name, raw (non-Huffman) strings of < 127 bytes.
            block.WriteByte(0x00);
            block.WriteByte((byte)name.Length);
            block.Write(Encoding.ASCII.GetBytes(name));
            block.WriteByte((byte)value.Length);
            block.Write(Encoding.ASCII.GetBytes(value));
        }
        return block.ToArray();
    }
}
