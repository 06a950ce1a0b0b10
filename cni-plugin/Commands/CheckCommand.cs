namespace Ambient.Cni.Commands;

/// <summary>CHECK: the capture an ADD installed is still in place (SPEC.md: "external dependencies such as a daemon").</summary>
internal static class CheckCommand
{
    public static async Task RunAsync(CommandContext ctx)
    {
        // SPEC.md, CHECK: the runtime must pass the previous ADD's result.
        var prevResult = ctx.Config.PrevResult ?? throw new CniException(
            CniErrorCode.InvalidConfig,
            "CHECK requires prevResult (the result of the previous ADD)");

        if (!ctx.Args.HasPod || ctx.IsExcludedNamespace)
        {
            return;
        }

        await CaptureGate.EnsureCapturedAsync(ctx, PrevResult.PodIps(prevResult), "the pod is not captured");
    }
}
