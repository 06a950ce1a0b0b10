namespace Ambient.Cni.Commands;

/// <summary>ADD: capture the pod through the agent, then hand the previous result on unchanged.</summary>
internal static class AddCommand
{
    public static async Task<byte[]> RunAsync(CommandContext ctx)
    {
        // The pod's addresses come from the primary CNI; without its result there is nothing to capture.
        var prevResult = ctx.Config.PrevResult ?? throw new CniException(
            CniErrorCode.InvalidConfig,
            "ambient-cni must be chained after the primary CNI plugin: ADD got no prevResult",
            "list ambient-cni after the network plugin in the \"plugins\" array of the conflist");

        if (!ctx.Args.HasPod)
        {
            // Not started by kubelet (no K8S_POD_* in CNI_ARGS): nothing the mesh can enroll.
            ctx.Log.Info("no Kubernetes pod in CNI_ARGS; passing through");
        }
        else if (ctx.IsExcludedNamespace)
        {
            ctx.Log.Debug($"namespace {ctx.Args.PodNamespace} is excluded; passing through");
        }
        else
        {
            var ips = PrevResult.PodIps(prevResult);
            await CaptureGate.EnsureCapturedAsync(ctx, ips, "refusing to start it uncaptured");
        }

        return PrevResult.Render(prevResult, ctx.Config.CniVersion);
    }
}
