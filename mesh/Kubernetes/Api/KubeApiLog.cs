using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>Log lines of the Kubernetes API watcher (event ids 4300-4399).</summary>
internal static partial class KubeApiLog
{
    [LoggerMessage(EventId = 4300, Level = LogLevel.Information, Message = "Kubernetes API source: {Server} from {Origin}, watching {Kinds} kinds")]
    public static partial void Started(ILogger logger, Uri server, string origin, int kinds);

    [LoggerMessage(EventId = 4301, Level = LogLevel.Warning, Message = "{Origin} has credentials for the plain-http server {Server}; they are not sent (use https)")]
    public static partial void CredentialsWithheld(ILogger logger, string origin, Uri server);

    [LoggerMessage(EventId = 4302, Level = LogLevel.Information, Message = "{Resource}: listed {Count} objects at resourceVersion {ResourceVersion} ({Upserted} added or changed, {Removed} removed)")]
    public static partial void Listed(ILogger logger, KubeWatch resource, int count, string resourceVersion, int upserted, int removed);

    [LoggerMessage(EventId = 4303, Level = LogLevel.Information, Message = "{Resource}: not installed on the API server (404); skipped, looking again every {Retry}")]
    public static partial void KindMissing(ILogger logger, KubeWatch resource, TimeSpan retry);

    [LoggerMessage(EventId = 4304, Level = LogLevel.Information, Message = "{Resource}: now installed on the API server")]
    public static partial void KindAppeared(ILogger logger, KubeWatch resource);

    [LoggerMessage(EventId = 4305, Level = LogLevel.Information, Message = "{Resource}: resourceVersion {ResourceVersion} expired (410); listing again")]
    public static partial void Expired(ILogger logger, KubeWatch resource, string resourceVersion);

    [LoggerMessage(EventId = 4306, Level = LogLevel.Warning, Message = "{Resource}: {Operation} failed, keeping the last state and retrying in {Delay}: {Error}")]
    public static partial void Failed(ILogger logger, KubeWatch resource, string operation, TimeSpan delay, string error);

    [LoggerMessage(EventId = 4307, Level = LogLevel.Debug, Message = "{Resource}: {Operation} failed again (failure {Failures}), retrying in {Delay}: {Error}")]
    public static partial void FailedAgain(ILogger logger, KubeWatch resource, string operation, int failures, TimeSpan delay, string error);

    [LoggerMessage(EventId = 4308, Level = LogLevel.Information, Message = "{Resource}: API server reachable again after {Failures} failed attempts")]
    public static partial void Recovered(ILogger logger, KubeWatch resource, int failures);

    [LoggerMessage(EventId = 4309, Level = LogLevel.Warning, Message = "{Resource}: skipped an object the server sent: {Reason}")]
    public static partial void BadObject(ILogger logger, KubeWatch resource, string reason);

    [LoggerMessage(EventId = 4310, Level = LogLevel.Debug, Message = "{Resource}: watch from resourceVersion {ResourceVersion} ended after {Events} events ({How})")]
    public static partial void WatchEnded(ILogger logger, KubeWatch resource, string resourceVersion, int events, string how);

    [LoggerMessage(EventId = 4311, Level = LogLevel.Information, Message = "Kubernetes API source: initial sync done, {Count} objects")]
    public static partial void InitialSyncDone(ILogger logger, int count);

    [LoggerMessage(EventId = 4312, Level = LogLevel.Warning, Message = "A Kubernetes API change handler threw; the watcher keeps running")]
    public static partial void HandlerFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4313, Level = LogLevel.Error, Message = "{Resource}: unexpected failure in the list/watch loop; retrying in {Delay}")]
    public static partial void LoopFailed(ILogger logger, Exception exception, KubeWatch resource, TimeSpan delay);

    [LoggerMessage(EventId = 4314, Level = LogLevel.Debug, Message = "{Resource}: ignored a watch event of type {Type}")]
    public static partial void UnknownEvent(ILogger logger, KubeWatch resource, string type);
}
