namespace Ambient.Mesh.Http2;

/// <summary>A final (non-1xx) response: the status and the regular header fields (pseudo-headers removed).</summary>
public sealed record Http2Response(int Status, IReadOnlyList<HeaderField> Headers);
