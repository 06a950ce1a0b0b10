using System.Net;
using Ambient.Mesh.Identity;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Hbone;

/// <summary>Log lines of the HBONE client pool and server (event ids 4600-4699).</summary>
internal static partial class HboneLog
{
    [LoggerMessage(EventId = 4600, Level = LogLevel.Debug, Message = "HBONE connection to {Endpoint} as {Source}, peer {Peer}")]
    public static partial void Connected(ILogger logger, IPEndPoint endpoint, SpiffeId source, SpiffeId peer);

    [LoggerMessage(EventId = 4601, Level = LogLevel.Debug, Message = "HBONE handshake from {Remote} failed: {Error}")]
    public static partial void HandshakeFailed(ILogger logger, IPEndPoint remote, string error);
}
