namespace Ambient.Mesh.Http2;

/// <summary>A connection-level protocol error (we send GOAWAY with <see cref="Code"/>).</summary>
public sealed class Http2ProtocolException(Http2ErrorCode code, string message) : Exception(message)
{
    public Http2ErrorCode Code { get; } = code;
}
