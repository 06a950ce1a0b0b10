using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Http2;

/// <summary>Source-generated log messages for the HTTP/2 layer; event ids 2100-2199.</summary>
internal static partial class Http2Log
{
    [LoggerMessage(EventId = 2100, Level = LogLevel.Debug, Message = "HTTP/2 {Role} connection error {Code}: {Reason}")]
    public static partial void ConnectionError(ILogger logger, string role, Http2ErrorCode code, string reason);

    [LoggerMessage(EventId = 2101, Level = LogLevel.Debug, Message = "HTTP/2 {Role} received GOAWAY last-stream-id={LastStreamId} code={Code}")]
    public static partial void GoAwayReceived(ILogger logger, string role, int lastStreamId, Http2ErrorCode code);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Debug, Message = "HTTP/2 stream {StreamId} reset by {Side}: {Code}")]
    public static partial void StreamReset(ILogger logger, int streamId, string side, Http2ErrorCode code);

    [LoggerMessage(EventId = 2103, Level = LogLevel.Debug, Message = "HTTP/2 stream {StreamId} error {Code}: {Reason}")]
    public static partial void StreamError(ILogger logger, int streamId, Http2ErrorCode code, string reason);

    [LoggerMessage(EventId = 2104, Level = LogLevel.Warning, Message = "HTTP/2 stream handler failed for stream {StreamId}")]
    public static partial void HandlerFailed(ILogger logger, int streamId, Exception exception);

    [LoggerMessage(EventId = 2108, Level = LogLevel.Debug, Message = "HTTP/2 stream {StreamId} handler ended by a stream error: {Reason}")]
    public static partial void HandlerStreamEnded(ILogger logger, int streamId, string reason);

    [LoggerMessage(EventId = 2105, Level = LogLevel.Debug, Message = "HTTP/2 {Role} transport closed: {Reason}")]
    public static partial void TransportClosed(ILogger logger, string role, string reason);

    [LoggerMessage(EventId = 2106, Level = LogLevel.Debug, Message = "HTTP/2 {Role} connection closed after {Streams} streams")]
    public static partial void ConnectionClosed(ILogger logger, string role, long streams);

    [LoggerMessage(EventId = 2107, Level = LogLevel.Warning, Message = "HTTP/2 {Role} connection failed unexpectedly")]
    public static partial void UnexpectedError(ILogger logger, string role, Exception exception);
}
