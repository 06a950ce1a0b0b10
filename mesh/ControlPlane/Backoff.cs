namespace Ambient.Mesh.ControlPlane;

/// <summary>
/// Reconnect delays for control plane streams: exponential from <see cref="Min"/> to <see cref="Max"/> with full
/// jitter, so a restarted istiod is not hit by every node at the same instant (Istio's ztunnel: 10 ms .. 15 s).
/// </summary>
public sealed record Backoff(TimeSpan Min, TimeSpan Max)
{
    public static readonly Backoff Istio = new(TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(15));

    /// <summary>The delay after the <paramref name="failures"/>-th failure in a row (1-based).</summary>
    public TimeSpan Delay(int failures)
    {
        double ceiling = Math.Min(Max.TotalMilliseconds, Min.TotalMilliseconds * Math.Pow(2, Math.Clamp(failures - 1, 0, 30)));
        // Half fixed, half random: never zero, never above the cap.
        return TimeSpan.FromMilliseconds((ceiling / 2) + (Random.Shared.NextDouble() * ceiling / 2));
    }
}
