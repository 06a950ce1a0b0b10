using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel;

/// <summary>Log lines of the agent's lifecycle: start-up, config changes, drain (event ids 5000-5099).</summary>
internal static partial class AgentLog
{
    [LoggerMessage(EventId = 5000, Level = LogLevel.Critical, Message = "ztunnel could not start: {Error}")]
    public static partial void CouldNotStart(ILogger logger, string error);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "certificate renewal for {Identity} failed, keeping the current one: {Error}")]
    public static partial void RenewalFailed(ILogger logger, Ambient.Mesh.Identity.SpiffeId identity, string error);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "ztunnel ready: node '{Node}', mode {Mode}, {Workloads} workloads, {Services} services, {Policies} policies; listeners {Listeners}")]
    public static partial void Ready(ILogger logger, string node, string mode, int workloads, int services, int policies, string listeners);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Information, Message = "in-pod mode: CNI plugin socket {Socket}, {Pods} pods {How}, capture by {Firewall} ({Inbound} inbound)")]
    public static partial void InPodReady(ILogger logger, string socket, int pods, string how, string firewall, string inbound);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Warning, Message = "config change to {Settings} needs a restart: keeping the running values; applying workloads, services and policies now")]
    public static partial void RestartOnlySettings(ILogger logger, string settings);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Information, Message = "config reloaded from {Path}: {Workloads} workloads, {Services} services, {Policies} policies")]
    public static partial void ConfigReloaded(ILogger logger, string? path, int workloads, int services, int policies);

    [LoggerMessage(EventId = 5006, Level = LogLevel.Error, Message = "config change rejected, keeping the last good config ({Count} errors):\n  {Errors}")]
    public static partial void ConfigRejected(ILogger logger, int count, string errors);

    [LoggerMessage(EventId = 5007, Level = LogLevel.Information, Message = "policy change closed {Count} connections that are now denied")]
    public static partial void PolicyClosedConnections(ILogger logger, int count);

    [LoggerMessage(EventId = 5008, Level = LogLevel.Information, Message = "dropped {Count} certificates of identities no workload on this node uses any more")]
    public static partial void CertificatesDropped(ILogger logger, int count);

    [LoggerMessage(EventId = 5009, Level = LogLevel.Information, Message = "draining ({Reason}): {Count} open connections, deadline {Seconds}s")]
    public static partial void Draining(ILogger logger, string reason, int count, double seconds);

    [LoggerMessage(EventId = 5010, Level = LogLevel.Warning, Message = "drain deadline passed: closing {Count} connections")]
    public static partial void DrainDeadline(ILogger logger, int count);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Information, Message = "drained")]
    public static partial void Drained(ILogger logger);
}
