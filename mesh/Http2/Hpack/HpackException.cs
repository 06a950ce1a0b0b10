namespace Ambient.Mesh.Http2.Hpack;

/// <summary>Malformed HPACK input; the connection answers with GOAWAY COMPRESSION_ERROR (RFC 9113 section 4.3).</summary>
internal sealed class HpackException(string message) : Exception(message);
