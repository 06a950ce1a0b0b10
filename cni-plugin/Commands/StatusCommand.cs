namespace Ambient.Cni.Commands;

/// <summary>STATUS (CNI 1.1): ready exactly when the agent says so, since ADD depends on it.</summary>
internal static class StatusCommand
{
    public static async Task RunAsync(CommandContext ctx)
    {
        var call = await ctx.Agent.SendAsync(new AgentRequest { Command = ctx.Command.ToWire() }, ctx.Cancellation);
        if (call.Status == AgentCallStatus.Answered && call.Response!.Status == AgentStatus.Ready)
        {
            return;
        }

        string why = call.Status switch
        {
            AgentCallStatus.Answered when call.Response!.Status == AgentStatus.Error => $"the agent reports an error: {call.Response.Message}",
            AgentCallStatus.Answered => $"the agent answered \"{call.Response!.Status}\" instead of \"ready\"",
            _ => call.Failure!,
        };
        throw new CniException(CniErrorCode.PluginNotAvailable, "ambient agent is not ready", why);
    }
}
