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

    [LoggerMessage(EventId = 5320, Level = LogLevel.Information, Message = "took over pod {Namespace}/{Name} ({Netns}) with its listening sockets from pid {Pid}")]
    public static partial void TookOver(ILogger logger, string @namespace, string name, string netns, int pid);

    [LoggerMessage(EventId = 5321, Level = LogLevel.Warning, Message = "hand-over socket {Path} is served by uid {Uid}, not this agent's user; not taking over from it")]
    public static partial void HandoverForeignUid(ILogger logger, string path, uint uid);

    [LoggerMessage(EventId = 5322, Level = LogLevel.Debug, Message = "no agent serves {Path} ({Error}): starting from the pod registry")]
    public static partial void NoPreviousAgent(ILogger logger, string path, System.Net.Sockets.SocketError error);

    [LoggerMessage(EventId = 5323, Level = LogLevel.Information, Message = "previous agent (pid {Pid}) released {Count} pods and drains")]
    public static partial void PreviousReleased(ILogger logger, int pid, int count);

    [LoggerMessage(EventId = 5324, Level = LogLevel.Warning, Message = "previous agent (pid {Pid}) did not confirm the hand-over; both agents accept for its pods until it exits")]
    public static partial void PreviousUnconfirmed(ILogger logger, int pid);

    [LoggerMessage(EventId = 5325, Level = LogLevel.Warning, Message = "completing the hand-over with pid {Pid} failed: {Error}; both agents accept for its pods until it exits")]
    public static partial void CompleteHandoverFailed(ILogger logger, int pid, string error);

    [LoggerMessage(EventId = 5326, Level = LogLevel.Warning, Message = "hand-over request from pid {Pid} (uid {Uid}) refused: only uid {Own} may take over this agent's pods")]
    public static partial void HandoverRefusedUid(ILogger logger, int pid, uint uid, uint own);

    [LoggerMessage(EventId = 5327, Level = LogLevel.Warning, Message = "hand-over connection from pid {Pid} did not ask to take over; ignored")]
    public static partial void HandoverNotAsked(ILogger logger, int pid);

    [LoggerMessage(EventId = 5328, Level = LogLevel.Warning, Message = "hand-over to pid {Pid} failed, this agent keeps its pods: {Error}")]
    public static partial void HandoverFailed(ILogger logger, int pid, string error);

    [LoggerMessage(EventId = 5329, Level = LogLevel.Information, Message = "newer agent (pid {Pid}) is taking over: handing it the listening sockets of {Count} pods")]
    public static partial void HandingOver(ILogger logger, int pid, int count);

    [LoggerMessage(EventId = 5330, Level = LogLevel.Warning, Message = "newer agent (pid {Pid}) went away before it was ready; this agent keeps its pods")]
    public static partial void NewerAgentGone(ILogger logger, int pid);

    [LoggerMessage(EventId = 5331, Level = LogLevel.Information, Message = "handed {Count} pods over to the newer agent (pid {Pid}): no longer accepting for them")]
    public static partial void HandedOver(ILogger logger, int count, int pid);

    [LoggerMessage(EventId = 5332, Level = LogLevel.Error, Message = "taking over from the running agent (pid {Pid}) failed: {Error}; re-adopting from the registry")]
    public static partial void TakeoverFailed(ILogger logger, int pid, string error);

    [LoggerMessage(EventId = 5333, Level = LogLevel.Information, Message = "{What} socket {Path} now belongs to another agent; leaving it in place")]
    public static partial void SocketFileTakenOver(ILogger logger, string what, string path);

    [LoggerMessage(EventId = 5334, Level = LogLevel.Information, Message = "an agent is running on this node ({Path}): taking its pods over once the mesh sources have synced (waiting for {Sources}); it keeps serving them until then")]
    public static partial void TakeoverWaitsForSync(ILogger logger, string path, string sources);

    [LoggerMessage(EventId = 5336, Level = LogLevel.Information, Message = "a newer agent (pid {Pid}) checked that this agent runs; it takes the pods over once its mesh sources have synced")]
    public static partial void HandoverProbed(ILogger logger, int pid);

    [LoggerMessage(EventId = 5335, Level = LogLevel.Information, Message = "mesh sources synced after {Seconds:0.0} s: taking the pods over")]
    public static partial void TakeoverSynced(ILogger logger, double seconds);
}
