namespace Ambient.Cni.Commands;

/// <summary>
/// DEL: tell the agent the pod is going, best effort. DEL must succeed however often it is repeated and
/// whatever is already gone (SPEC.md, DEL), so no agent outcome fails it; the agent's GC covers misses.
/// </summary>
internal static class DelCommand
{
    public static async Task RunAsync(CommandContext ctx)
    {
        if (ctx.IsExcludedNamespace)
        {
            return;
        }

        // Addresses help the agent find state when the netns is already gone; a bad prevResult must not block DEL.
        IReadOnlyList<string> ips;
        try
        {
            ips = PrevResult.PodIps(ctx.Config.PrevResult);
        }
        catch (CniException ex)
        {
            ctx.Log.Warn($"ignoring prevResult: {ex.Message}");
            ips = [];
        }

        var call = await ctx.Agent.SendAsync(ctx.PodRequest(ips), ctx.Cancellation);
        if (call.Status == AgentCallStatus.Answered && call.Response!.Status is AgentStatus.Removed or AgentStatus.NotEnrolled)
        {
            ctx.Log.Debug($"agent answered {call.Response.Status}");
        }
        else if (call.Status == AgentCallStatus.Answered)
        {
            ctx.Log.Warn($"agent answered {call.Response!.Status} to DEL: {call.Response.Message}; continuing");
        }
        else
        {
            ctx.Log.Warn($"could not tell the agent about DEL ({call.Failure}); continuing");
        }
    }
}
