using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Identity;

/// <summary>Log lines of the in-pod CA endpoint the agent serves to waypoint pods (event ids 5600-5699).</summary>
internal static partial class PodCaLog
{
    [LoggerMessage(EventId = 5600, Level = LogLevel.Information, Message = "waypoint pod {Namespace}/{Name}: serving its certificates (only {Identity}) on {Endpoint} inside {Netns}")]
    public static partial void Opened(ILogger logger, string @namespace, string name, string identity, string endpoint, string netns);

    [LoggerMessage(EventId = 5601, Level = LogLevel.Information, Message = "waypoint pod {Namespace}/{Name}: CA endpoint closed ({Reason})")]
    public static partial void Closed(ILogger logger, string @namespace, string name, string reason);

    [LoggerMessage(EventId = 5602, Level = LogLevel.Information, Message = "signed {Identity} for waypoint pod {Pod} (valid until {NotAfter:u})")]
    public static partial void Signed(ILogger logger, string identity, string pod, DateTime notAfter);

    [LoggerMessage(EventId = 5603, Level = LogLevel.Warning, Message = "refused a certificate for waypoint pod {Pod}: {Reason}")]
    public static partial void Refused(ILogger logger, string pod, string reason);

    [LoggerMessage(EventId = 5604, Level = LogLevel.Error, Message = "waypoint pod {Namespace}/{Name}: cannot open its CA endpoint: {Error}; retried at the next mesh change")]
    public static partial void OpenFailed(ILogger logger, string @namespace, string name, string error);

    [LoggerMessage(EventId = 5605, Level = LogLevel.Error, Message = "{Error}; waypoint pods get their CA endpoints again when the CNI plugin reports them")]
    public static partial void RegistryUnreadable(ILogger logger, string error);
}
