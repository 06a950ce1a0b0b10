using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;

namespace Ambient.Waypoint.Routing;

/// <summary>
/// Istio's locality failover as Envoy runs it: endpoints are ranked by where they are relative to the waypoint
/// (0 same region, zone and subzone; 1 same zone; 2 same region; 3 the region <c>failover</c> names for ours;
/// 4 elsewhere), and each rank takes the traffic its health allows before the next gets any: Envoy's priority
/// load, <c>min(100%, 1.4 x healthy share)</c> of what the better ranks left, scaled up when no rank is fully
/// healthy. An ejected (or unhealthy) endpoint counts as not healthy, so when a locality's endpoints are ejected its
/// traffic fails over, and it comes back as they return.
/// </summary>
internal static class LocalityPriority
{
    private const int Ranks = 5;

    /// <summary>Envoy's overprovisioning factor: a rank keeps all its traffic until less than 1/1.4 of it is healthy.</summary>
    private const double Overprovisioning = 1.4;

    /// <param name="all">Every endpoint of the destination (healthy or not, ejected or not).</param>
    /// <param name="available">Those a request may go to now.</param>
    /// <param name="draw">A uniform draw in [0, 1): which rank this request goes to when several share the traffic.</param>
    public static List<(Workload Workload, int Port)> Narrow(
        List<(Workload Workload, int Port)> all, List<(Workload Workload, int Port)> available, Locality own, LocalityLbSetting? setting, double draw)
    {
        Span<int> total = stackalloc int[Ranks];
        Span<int> healthy = stackalloc int[Ranks];
        foreach (var (w, _) in all)
        {
            total[Rank(own, w.Locality, setting)]++;
        }
        foreach (var (w, _) in available)
        {
            healthy[Rank(own, w.Locality, setting)]++;
        }
        Span<double> share = stackalloc double[Ranks];
        double left = 1, sum = 0;
        for (int r = 0; r < Ranks; r++)
        {
            if (total[r] == 0)
            {
                continue;
            }
            share[r] = Math.Min(left, Math.Min(1, Overprovisioning * healthy[r] / total[r]));
            left -= share[r];
            sum += share[r];
        }
        if (sum <= 0)
        {
            return available;
        }
        double x = draw * sum, cumulative = 0;
        int chosen = -1;
        for (int r = 0; r < Ranks; r++)
        {
            cumulative += share[r];
            if (share[r] > 0 && (x < cumulative || chosen < 0))
            {
                chosen = r;
                if (x < cumulative)
                {
                    break;
                }
            }
        }
        return available.FindAll(c => Rank(own, c.Workload.Locality, setting) == chosen);
    }

    internal static int Rank(Locality own, Locality endpoint, LocalityLbSetting? setting)
    {
        if (endpoint.Region == own.Region)
        {
            if (endpoint.Zone == own.Zone)
            {
                return endpoint.Subzone == own.Subzone ? 0 : 1;
            }
            return 2;
        }
        if (setting is not null)
        {
            foreach (var f in setting.Failover)
            {
                if (f.From == own.Region && f.To == endpoint.Region)
                {
                    return 3;
                }
            }
        }
        return 4;
    }
}
