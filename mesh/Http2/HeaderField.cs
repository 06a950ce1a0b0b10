namespace Ambient.Mesh.Http2;

/// <summary>One header field; names are lower-case on the wire (RFC 9113 section 8.2.1).</summary>
public readonly record struct HeaderField(string Name, string Value);
