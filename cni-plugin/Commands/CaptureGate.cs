namespace Ambient.Cni.Commands;

/// <summary>
/// The one rule ADD and CHECK share: a pod the mesh has enrolled must not run uncaptured. Ask the agent;
/// if it cannot be asked, the enrollment file decides, and if that cannot be read either, fail closed.
/// </summary>
internal static class CaptureGate
{
    public static async Task EnsureCapturedAsync(CommandContext ctx, IReadOnlyList<string> ips, string refusal)
    {
        var call = await ctx.Agent.SendAsync(ctx.PodRequest(ips), ctx.Cancellation);
        switch (call.Status)
        {
            case AgentCallStatus.Answered when call.Response!.Status == AgentStatus.Captured:
                ctx.Log.Info($"captured by the ambient agent (ips {string.Join(",", ips)})");
                return;

            case AgentCallStatus.Answered when call.Response!.Status == AgentStatus.NotEnrolled:
                ctx.Log.Debug("agent says the pod is not enrolled; passing through");
                return;

            case AgentCallStatus.Answered when call.Response!.Status == AgentStatus.Error:
                throw Fail(ctx, $"ambient agent could not capture pod {ctx.PodLabel}; {refusal}", call.Response.Message ?? "the agent gave no reason");

            case AgentCallStatus.Answered:
                throw Fail(ctx, $"ambient agent answered \"{call.Response!.Status}\" to {ctx.Command.ToWire()}; {refusal}", "the agent and plugin disagree on the protocol; check that both come from the same release");

            case AgentCallStatus.ProtocolError:
                throw Fail(ctx, $"invalid response from the ambient agent; {refusal}", call.Failure);
        }

        // Unreachable: the enrollment file is the agent's last word on who is in the mesh.
        var (verdict, reason) = Enrollment.Evaluate(ctx.Config.EnrollmentFile, ctx.Args.PodNamespace!, ctx.Args.PodName!);
        switch (verdict)
        {
            case EnrollmentVerdict.NotEnrolled:
                ctx.Log.Warn($"ambient agent unreachable ({call.Failure}); {reason}; passing through");
                return;

            case EnrollmentVerdict.Enrolled:
                throw Fail(ctx, $"ambient agent unreachable at {ctx.Agent.SocketPath}; pod is enrolled, {refusal}", $"{call.Failure}; {reason}");

            default:
                throw Fail(
                    ctx,
                    $"ambient agent unreachable at {ctx.Agent.SocketPath} and enrollment is unknown; {refusal}",
                    $"{call.Failure}; {reason}. The mesh is installed on this node (ambient-cni is in the CNI chain) but " +
                    "neither the agent nor its enrollment file can say whether this pod is in it; start the agent, or remove ambient-cni from the CNI config when uninstalling");
        }
    }

    // 11 ("try again later"): the runtime retries the sandbox, and capture succeeds once the agent is back.
    private static CniException Fail(CommandContext ctx, string message, string? details) =>
        new(CniErrorCode.TryAgainLater, message, details);
}
