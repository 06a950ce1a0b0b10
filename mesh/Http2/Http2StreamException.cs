namespace Ambient.Mesh.Http2;

/// <summary>A stream ended abnormally: RST_STREAM from the peer (<see cref="RemoteReset"/>), or the connection was lost.</summary>
public sealed class Http2StreamException(Http2ErrorCode code, bool remoteReset, string message) : IOException(message)
{
    public Http2ErrorCode Code { get; } = code;
    public bool RemoteReset { get; } = remoteReset;
}
