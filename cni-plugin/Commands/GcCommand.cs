namespace Ambient.Cni.Commands;

/// <summary>GC (CNI 1.1): forward the live attachments so the agent can drop the rest. Best effort.</summary>
internal static class GcCommand
{
    public static async Task RunAsync(CommandContext ctx)
    {
        var request = new AgentRequest { Command = ctx.Command.ToWire(), ValidAttachments = ctx.Config.ValidAttachments };
        var call = await ctx.Agent.SendAsync(request, ctx.Cancellation);
        if (call.Status != AgentCallStatus.Answered)
        {
            ctx.Log.Warn($"could not forward GC to the agent ({call.Failure}); it will reconcile on its own");
        }
        else if (call.Response!.Status == AgentStatus.Error)
        {
            ctx.Log.Warn($"agent reported an error for GC: {call.Response.Message}");
        }
    }
}
