using Ambient.InstallCni.Cli;

namespace Ambient.InstallCni.Lifecycle;

/// <summary>The verdict at SIGTERM and the sentence that explains it.</summary>
internal sealed record ExitVerdict(bool Uninstall, string Reason);

/// <summary>
/// Decides at SIGTERM whether this is an uninstall (remove the entry and the binary) or a restart/upgrade (leave
/// them, so pods fail closed until the new installer and agent are up rather than start uncaptured).
/// With <see cref="ExitAction.Auto"/> the installer's DaemonSet decides, as Istio's CNI agent does (istio/istio
/// #54180): deleted or being deleted = uninstall, present = restart. When the API server gives no clear answer
/// the install stays: a node that fails pods closed is recoverable by hand (<c>install-cni uninstall</c>); a
/// mesh pod that started uncaptured is not.
/// </summary>
internal sealed class ExitPolicy(InstallerOptions options, DaemonSetProbe? probe)
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);
    private const int Attempts = 3;

    /// <summary>Set when a probe at start-up could read the DaemonSet: later 401/403 then means our RBAC is being deleted.</summary>
    public bool StartupProbeSucceeded { get; set; }

    public async Task<ExitVerdict> DecideAsync(CancellationToken ct)
    {
        switch (options.OnExit)
        {
            case ExitAction.Keep:
                return new(false, "--on-exit keep");
            case ExitAction.Uninstall:
                return new(true, "--on-exit uninstall");
        }

        if (probe is null)
        {
            return new(false, "--on-exit auto without an API server to ask; keeping the install");
        }

        DaemonSetProbeResult result = new(DaemonSetState.Unknown, "not asked");
        for (int attempt = 1; attempt <= Attempts; attempt++)
        {
            result = await probe.GetAsync(ct).ConfigureAwait(false);
            if (result.State != DaemonSetState.Unknown)
            {
                break;
            }

            if (attempt < Attempts)
            {
                await Task.Delay(RetryDelay, ct).ConfigureAwait(false);
            }
        }

        return result.State switch
        {
            DaemonSetState.Deleted => new(true, result.Detail),
            DaemonSetState.Present => new(false, $"{result.Detail}: a restart or upgrade"),
            DaemonSetState.Denied when StartupProbeSucceeded =>
                new(true, $"{result.Detail}, which it allowed at start-up: the install's RBAC is being deleted"),
            _ => new(false, $"{result.Detail}; keeping the install (remove it by hand with 'install-cni uninstall' if this was an uninstall)"),
        };
    }
}
