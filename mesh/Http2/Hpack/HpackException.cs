namespace Ambient.Mesh.Http2.Hpack;

/// <summary>Malformed HPACK input; the connection answers with GOAWAY COMPRESSION_ERROR (RFC 9113 section 4.3).</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1064", Justification = "never leaves the assembly: the connection turns it into COMPRESSION_ERROR")]
internal sealed class HpackException(string message) : Exception(message);
