using System.Net;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Proxy;

/// <summary>Log lines of the proxy paths and their listeners (event ids 5400-5499).</summary>
internal static partial class ProxyLog
{
    [LoggerMessage(EventId = 5400, Level = LogLevel.Warning, Message = "{Listener} accept failed: {Error}")]
    public static partial void AcceptFailed(ILogger logger, string listener, System.Net.Sockets.SocketError error);

    [LoggerMessage(EventId = 5401, Level = LogLevel.Error, Message = "{Listener} connection handler failed")]
    public static partial void HandlerFailed(ILogger logger, Exception exception, string listener);

    [LoggerMessage(EventId = 5402, Level = LogLevel.Information, Message = "dry-run policy {Policies} would have applied to {Source} -> {Destination}")]
    public static partial void DryRun(ILogger logger, string policies, IPEndPoint source, IPEndPoint? destination);

    [LoggerMessage(EventId = 5403, Level = LogLevel.Debug, Message = "outbound from {Source} to {Destination} refused: {Error}")]
    public static partial void OutboundRefused(ILogger logger, IPEndPoint source, IPEndPoint? destination, string error);
}
