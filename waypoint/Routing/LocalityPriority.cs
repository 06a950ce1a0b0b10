using System.Collections.Immutable;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;

namespace Ambient.Waypoint.Routing;

/// <summary>
/// Istio's locality load balancing as Envoy runs it, in its three forms.
/// <list type="bullet">
/// <item><b>failover</b> (priorities): endpoints are ranked by where they are relative to the waypoint (0 same
/// region, zone and subzone; 1 same zone; 2 same region; 3 the region <c>failover</c> names for ours; 4 elsewhere),
/// and each rank takes the traffic its health allows before the next gets any: Envoy's priority load,
/// <c>min(100%, 1.4 x healthy share)</c> of what the better ranks left, scaled up when no rank is fully healthy. An
/// ejected (or unhealthy) endpoint counts as not healthy, so when a locality's endpoints are ejected its traffic fails
/// over, and it comes back as they return.</item>
/// <item><b>failoverPriority</b>: the ranks come from an ordered list of labels instead: an endpoint that matches the
/// waypoint on all N labels is rank 0, on the first N-1 rank 1, ..., on none rank N (Istio's
/// <c>applyFailoverPriorities</c>). The topology labels compare localities, <c>topology.istio.io/network</c> the
/// network, any other label the pods' labels; <c>label=value</c> compares against that value instead of the
/// waypoint's own. With <c>failover</c> as well, the locality ranks order endpoints within each label rank.</item>
/// <item><b>distribute</b> (weights): the first entry whose <c>from</c> matches the waypoint's locality splits the
/// traffic by its <c>to</c> weights; a weight is shared by the localities its pattern matches in proportion to their
/// endpoints (Istio's <c>applyLocalityWeights</c>), localities no pattern matches get nothing, and a locality's weight
/// shrinks with its health as Envoy's locality-weighted balancing does (<c>min(1, 1.4 x healthy share)</c>).</item>
/// </list>
/// </summary>
internal static class LocalityPriority
{
    private const int LocalityRanks = 5;

    /// <summary>Envoy's overprovisioning factor: a rank keeps all its traffic until less than 1/1.4 of it is healthy.</summary>
    private const double Overprovisioning = 1.4;

    private const string RegionLabel = "topology.kubernetes.io/region";
    private const string ZoneLabel = "topology.kubernetes.io/zone";
    private const string SubzoneLabel = "topology.istio.io/subzone";
    private const string NetworkLabel = "topology.istio.io/network";

    /// <summary>The failover form: ranks by locality (and <c>failover</c> regions).</summary>
    /// <param name="all">Every endpoint of the destination (healthy or not, ejected or not).</param>
    /// <param name="available">Those a request may go to now.</param>
    /// <param name="draw">A uniform draw in [0, 1): which rank this request goes to when several share the traffic.</param>
    public static List<(Workload Workload, int Port)> Narrow(
        List<(Workload Workload, int Port)> all, List<(Workload Workload, int Port)> available, Locality own, LocalityLbSetting? setting, double draw) =>
        Narrow(all, available, w => Rank(own, w.Locality, setting), LocalityRanks, draw);

    /// <summary>The failoverPriority form: ranks by the setting's labels, compared with the waypoint's (<paramref name="self"/>).</summary>
    public static List<(Workload Workload, int Port)> NarrowByLabels(
        List<(Workload Workload, int Port)> all, List<(Workload Workload, int Port)> available, Workload self, LocalityLbSetting setting, double draw)
    {
        var labels = setting.FailoverPriority;
        if (setting.Failover.IsDefaultOrEmpty)
        {
            return Narrow(all, available, w => LabelRank(self, w, labels), labels.Length + 1, draw);
        }
        return Narrow(all, available, w => LabelRank(self, w, labels) * LocalityRanks + Rank(self.Locality, w.Locality, setting), (labels.Length + 1) * LocalityRanks, draw);
    }

    private static List<(Workload Workload, int Port)> Narrow(
        List<(Workload Workload, int Port)> all, List<(Workload Workload, int Port)> available, Func<Workload, int> rank, int ranks, double draw)
    {
        Span<int> total = ranks <= 64 ? stackalloc int[ranks] : new int[ranks];
        Span<int> healthy = ranks <= 64 ? stackalloc int[ranks] : new int[ranks];
        foreach (var (w, _) in all)
        {
            total[rank(w)]++;
        }
        foreach (var (w, _) in available)
        {
            healthy[rank(w)]++;
        }
        Span<double> share = ranks <= 64 ? stackalloc double[ranks] : new double[ranks];
        double left = 1, sum = 0;
        for (int r = 0; r < ranks; r++)
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
        int chosen = Choose(share, draw * sum);
        return available.FindAll(c => rank(c.Workload) == chosen);
    }

    /// <summary>The index whose slice of the cumulative weights holds <paramref name="x"/> (the last non-zero one at the top end).</summary>
    private static int Choose(ReadOnlySpan<double> weights, double x)
    {
        double cumulative = 0;
        int chosen = -1;
        for (int r = 0; r < weights.Length; r++)
        {
            cumulative += weights[r];
            if (weights[r] > 0)
            {
                chosen = r;
                if (x < cumulative)
                {
                    break;
                }
            }
        }
        return chosen;
    }

    /// <summary>
    /// The distribute form. Null when no entry's <c>from</c> matches the waypoint's locality (then nothing of
    /// localityLbSetting applies: Istio sets no failover next to distribute).
    /// </summary>
    public static List<(Workload Workload, int Port)>? Distribute(
        List<(Workload Workload, int Port)> all, List<(Workload Workload, int Port)> available, Locality own, ImmutableArray<LocalityDistribute> rules, double draw)
    {
        LocalityDistribute? rule = null;
        foreach (var r in rules)
        {
            if (Matches(own, r.From))
            {
                rule = r;
                break;
            }
        }
        if (rule is null)
        {
            return null;
        }
        var totals = new Dictionary<Locality, (int Total, int Healthy)>();
        foreach (var (w, _) in all)
        {
            totals[w.Locality] = (totals.GetValueOrDefault(w.Locality).Total + 1, 0);
        }
        foreach (var (w, _) in available)
        {
            var t = totals.GetValueOrDefault(w.Locality);
            totals[w.Locality] = (t.Total, t.Healthy + 1);
        }
        // Each pattern claims the localities it matches that no pattern claimed before; the more specific patterns go
        // first, so "r1/z1/*" takes its zone before "r1/*" shares out the rest of the region (Istio walks the map in
        // Go's random order, which makes overlapping patterns a matter of luck there).
        var weights = new Dictionary<Locality, double>();
        foreach (var (pattern, weight) in rule.To.OrderByDescending(kv => Specificity(kv.Key)).ThenBy(kv => kv.Key, StringComparer.Ordinal))
        {
            int matched = 0;
            foreach (var (locality, t) in totals)
            {
                if (!weights.ContainsKey(locality) && Matches(locality, pattern))
                {
                    matched += t.Total;
                }
            }
            foreach (var (locality, t) in totals)
            {
                if (!weights.ContainsKey(locality) && Matches(locality, pattern))
                {
                    weights[locality] = Math.Ceiling((double)weight * t.Total / matched);
                }
            }
        }
        var localities = new List<Locality>(weights.Count);
        var effective = new List<double>(weights.Count);
        double sum = 0;
        foreach (var (locality, weight) in weights)
        {
            var t = totals[locality];
            double e = weight * Math.Min(1, Overprovisioning * t.Healthy / t.Total);
            localities.Add(locality);
            effective.Add(e);
            sum += e;
        }
        if (sum <= 0)
        {
            // No weighted locality has an endpoint to take the request: Envoy's panic mode sends to their endpoints
            // anyway rather than to a locality the rule gave nothing.
            return all.FindAll(c => weights.ContainsKey(c.Workload.Locality));
        }
        var chosen = localities[Choose(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(effective), draw * sum)];
        return available.FindAll(c => c.Workload.Locality == chosen);
    }

    /// <summary>Istio's locality match: "region[/zone[/subzone]]", where "*" or a missing part matches anything.</summary>
    internal static bool Matches(Locality locality, string pattern)
    {
        var parts = pattern.Split('/', 3);
        return Part(0, locality.Region) && Part(1, locality.Zone) && Part(2, locality.Subzone);

        bool Part(int i, string value) => i >= parts.Length || parts[i] == "*" || parts[i] == value;
    }

    private static int Specificity(string pattern)
    {
        int n = 0;
        foreach (var part in pattern.Split('/'))
        {
            if (part != "*")
            {
                n++;
            }
        }
        return n;
    }

    /// <summary>failoverPriority: the number of labels, from the last, that the endpoint does not match in order.</summary>
    internal static int LabelRank(Workload self, Workload endpoint, ImmutableArray<string> labels)
    {
        int matched = 0;
        foreach (var entry in labels)
        {
            int eq = entry.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? entry : entry[..eq];
            string? want = eq < 0 ? Value(self, key) : entry[(eq + 1)..];
            if (string.IsNullOrEmpty(want) || Value(endpoint, key) != want)
            {
                break;
            }
            matched++;
        }
        return labels.Length - matched;
    }

    private static string? Value(Workload w, string label) => label switch
    {
        RegionLabel => w.Locality.Region,
        ZoneLabel => w.Locality.Zone,
        SubzoneLabel => w.Locality.Subzone,
        NetworkLabel => w.Network,
        _ => w.Labels.TryGetValue(label, out var v) ? v : null,
    };

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
