using Ambient.Mesh.Sources;
using Microsoft.Extensions.Hosting;

namespace Ambient.Waypoint.Governance;

/// <summary>
/// Runs the outlier detectors' ejection sweeps: every destination is swept at its own <c>interval</c>; this timer
/// only needs to tick often enough to notice (the sweep cost is nothing for destinations not due).
/// </summary>
internal sealed class OutlierSweeper(GovernanceState state, MeshStore store) : BackgroundService
{
    /// <summary>The finest <c>interval</c> honoured exactly; shorter ones are swept at this pace.</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Tick, state.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                state.Sweep(store.Current);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
