using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.InPod;

/// <summary>Log lines of in-pod mode: the CNI socket and pod capture (event ids 5300-5399).</summary>
internal static partial class InPodLog
{
    [LoggerMessage(EventId = 5300, Level = LogLevel.Information, Message = "pod {Namespace}/{Name}: network namespace {Netns} is gone, forgetting it")]
    public static partial void NetnsGone(ILogger logger, string @namespace, string name, string netns);

    [LoggerMessage(EventId = 5301, Level = LogLevel.Information, Message = "re-adopted pod {Namespace}/{Name} ({Netns})")]
    public static partial void Readopted(ILogger logger, string @namespace, string name, string netns);

    [LoggerMessage(EventId = 5302, Level = LogLevel.Error, Message = "could not re-adopt pod {Namespace}/{Name}: {Error}; its traffic stays refused until the CNI plugin adds it again")]
    public static partial void ReadoptFailed(ILogger logger, string @namespace, string name, string error);

    [LoggerMessage(EventId = 5303, Level = LogLevel.Information, Message = "pod {Namespace}/{Name} is not enrolled: left untouched, captured if it gets enrolled")]
    public static partial void NotEnrolled(ILogger logger, string @namespace, string name);

    [LoggerMessage(EventId = 5304, Level = LogLevel.Error, Message = "capturing pod {Namespace}/{Name} failed: {Error}")]
    public static partial void CaptureFailed(ILogger logger, string @namespace, string name, string error);

    [LoggerMessage(EventId = 5305, Level = LogLevel.Information, Message = "captured pod {Namespace}/{Name} ({Ips}) in {Netns}")]
    public static partial void Captured(ILogger logger, string @namespace, string name, string ips, string netns);

    [LoggerMessage(EventId = 5306, Level = LogLevel.Information, Message = "released pod {Namespace}/{Name}")]
    public static partial void Released(ILogger logger, string @namespace, string name);

    [LoggerMessage(EventId = 5307, Level = LogLevel.Information, Message = "GC released stale pod {Namespace}/{Name}")]
    public static partial void GcReleased(ILogger logger, string @namespace, string name);

    [LoggerMessage(EventId = 5308, Level = LogLevel.Warning, Message = "removing capture rules of {Namespace}/{Name}: {Error}")]
    public static partial void RulesRemovalFailed(ILogger logger, string @namespace, string name, string error);

    [LoggerMessage(EventId = 5309, Level = LogLevel.Error, Message = "cannot write the enrollment file: {Error}")]
    public static partial void EnrollmentFileFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 5310, Level = LogLevel.Warning, Message = "CNI request is not valid JSON: {Error}")]
    public static partial void BadRequest(ILogger logger, string error);

    [LoggerMessage(EventId = 5311, Level = LogLevel.Debug, Message = "CNI client went away: {Error}")]
    public static partial void ClientGone(ILogger logger, string error);

    [LoggerMessage(EventId = 5313, Level = LogLevel.Error, Message = "re-checking pod enrollment after a mesh change failed; the next change tries again")]
    public static partial void ReconcileFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 5312, Level = LogLevel.Information, Message = "CNI socket {Path} now belongs to another agent; leaving it in place")]
    public static partial void SocketTakenOver(ILogger logger, string path);
}
