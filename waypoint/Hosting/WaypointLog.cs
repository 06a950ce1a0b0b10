using System.Net;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Hosting;

/// <summary>The waypoint's start-up lines (event ids 300-399).</summary>
internal static partial class WaypointLog
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Critical, Message = "waypoint could not start: {Error}")]
    public static partial void CouldNotStart(ILogger logger, string error);

    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "waypoint {Namespace}/{Name} ready: hbone={Hbone} admin={Admin} metrics={Metrics} readiness={Readiness}")]
    public static partial void Ready(ILogger logger, string @namespace, string name, EndPoint? hbone, EndPoint? admin, EndPoint? metrics, EndPoint? readiness);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "no certificate for {Id} from the Istio CA yet (attempt {Attempt}, next in {Delay}): {Error}")]
    public static partial void FirstCertificateFailed(ILogger logger, string id, int attempt, TimeSpan delay, string error);
}
