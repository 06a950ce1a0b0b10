using System.Collections.Concurrent;
using Ambient.Mesh.Model;

namespace Ambient.Ztunnel.State;

/// <summary>
/// The endpoints of one service port a connection may pick, with cumulative capacity weights, so a weighted random
/// pick is a binary search instead of a scan. Built once per (snapshot, service, port) and cached.
/// </summary>
/// <remarks>
/// The service's <see cref="LoadBalancing"/> applies as Istio's ztunnel applies it: unhealthy endpoints are left out
/// unless the health policy is ALLOW_ALL; under STRICT and FAILOVER each endpoint is ranked by how many of the routing
/// preferences (network, region, zone, subzone, node, cluster, in the listed order) it shares with the client, counting
/// until the first that differs. STRICT picks only endpoints that share all of them (none: no endpoint); FAILOVER picks
/// among the best rank present, so traffic stays as close as the endpoints allow and fails over outward. Ranking depends
/// only on where the client is, so the best-rank subset is computed once per client placement (network, locality,
/// node, cluster: a handful per set) and a ranked pick is then a dictionary hit plus the same binary search.
/// </remarks>
internal sealed class EndpointSet
{
    private readonly Workload[] _workloads;
    private readonly int[] _targetPorts;
    private readonly long[] _cumulative;
    private readonly LoadBalancing? _ranked;
    private readonly ConcurrentDictionary<Placement, EndpointSet?>? _byPlacement;

    private EndpointSet(Workload[] workloads, int[] targetPorts, long[] cumulative, LoadBalancing? ranked)
    {
        _workloads = workloads;
        _targetPorts = targetPorts;
        _cumulative = cumulative;
        _ranked = ranked;
        _byPlacement = ranked is null ? null : new ConcurrentDictionary<Placement, EndpointSet?>();
    }

    /// <summary>The endpoints eligible by health (before any locality ranking).</summary>
    public int Count => _workloads.Length;

    public static EndpointSet Build(Service service, int servicePort, IReadOnlyList<Workload> endpoints)
    {
        var lb = service.LoadBalancing;
        bool allowUnhealthy = lb?.HealthPolicy == LoadBalancingHealthPolicy.AllowAll;
        var ws = new List<Workload>(endpoints.Count);
        var ports = new List<int>(endpoints.Count);
        var cum = new List<long>(endpoints.Count);
        long total = 0;
        service.Ports.TryGetValue(servicePort, out int serviceTarget);
        for (int i = 0; i < endpoints.Count; i++)
        {
            var w = endpoints[i];
            if ((w.Status != HealthStatus.Healthy && !allowUnhealthy) || w.WorkloadIps.IsDefaultOrEmpty)
            {
                continue;
            }
            // The workload's own mapping wins (it knows its named target port); then the service's; then the port itself.
            int target = 0;
            if (w.Services.TryGetValue(service.Key, out var map) && map.TryGetValue(servicePort, out int wt))
            {
                target = wt;
            }
            if (target == 0)
            {
                target = serviceTarget != 0 ? serviceTarget : servicePort;
            }
            total += Weight(w);
            ws.Add(w);
            ports.Add(target);
            cum.Add(total);
        }
        LoadBalancing? ranked = lb is { Mode: LoadBalancingMode.Strict or LoadBalancingMode.Failover } ? lb : null;
        return new EndpointSet([.. ws], [.. ports], [.. cum], ranked);
    }

    /// <summary>
    /// Weighted random by capacity among the endpoints the load-balancing rules leave for <paramref name="source"/>;
    /// null when none is left (no healthy endpoint, or none matching a STRICT preference).
    /// </summary>
    public (Workload Workload, int TargetPort)? Pick(Random random, Workload? source = null)
    {
        if (_workloads.Length == 0)
        {
            return null;
        }
        if (_ranked is null)
        {
            return PickWeighted(random);
        }
        var subset = _byPlacement!.GetOrAdd(Placement.Of(source), static (placement, self) => self.BestRank(placement), this);
        return subset?.PickWeighted(random);
    }

    private (Workload Workload, int TargetPort) PickWeighted(Random random)
    {
        long r = random.NextInt64(_cumulative[^1]);
        int i = Array.BinarySearch(_cumulative, r + 1);
        if (i < 0)
        {
            i = ~i;
        }
        return (_workloads[i], _targetPorts[i]);
    }

    /// <summary>The endpoints a client at <paramref name="placement"/> may pick: the best rank present (STRICT: only a full match), or null.</summary>
    private EndpointSet? BestRank(Placement placement)
    {
        var lb = _ranked!;
        int required = lb.Mode == LoadBalancingMode.Strict ? lb.RoutingPreference.Length : 0;
        int best = -1;
        var ranks = new int[_workloads.Length];
        for (int i = 0; i < _workloads.Length; i++)
        {
            ranks[i] = Rank(lb, placement, _workloads[i]);
            if (ranks[i] >= required && ranks[i] > best)
            {
                best = ranks[i];
            }
        }
        if (best < 0)
        {
            return null;
        }
        var ws = new List<Workload>();
        var ports = new List<int>();
        var cum = new List<long>();
        long total = 0;
        for (int i = 0; i < _workloads.Length; i++)
        {
            if (ranks[i] == best)
            {
                total += Weight(_workloads[i]);
                ws.Add(_workloads[i]);
                ports.Add(_targetPorts[i]);
                cum.Add(total);
            }
        }
        return new EndpointSet([.. ws], [.. ports], [.. cum], ranked: null);
    }

    /// <summary>How many of the routing preferences, in order, <paramref name="endpoint"/> shares with the client (Istio's rank).</summary>
    internal static int Rank(LoadBalancing lb, Placement source, Workload endpoint)
    {
        if (!source.Known)
        {
            // An unknown client has no locality: nothing matches.
            return 0;
        }
        int rank = 0;
        foreach (var scope in lb.RoutingPreference)
        {
            bool same = scope switch
            {
                LoadBalancingScope.Network => source.Network == endpoint.Network,
                LoadBalancingScope.Region => source.Region == endpoint.Locality.Region,
                LoadBalancingScope.Zone => source.Zone == endpoint.Locality.Zone,
                LoadBalancingScope.Subzone => source.Subzone == endpoint.Locality.Subzone,
                LoadBalancingScope.Node => source.Node == endpoint.Node,
                LoadBalancingScope.Cluster => source.Cluster == endpoint.ClusterId,
                _ => false,
            };
            if (!same)
            {
                break;
            }
            rank++;
        }
        return rank;
    }

    private static long Weight(Workload w) => Math.Max(1, w.Capacity);

    /// <summary>Where a client is, as far as ranking goes; equal placements rank every endpoint alike.</summary>
    internal readonly record struct Placement(bool Known, string Network, string Region, string Zone, string Subzone, string Node, string Cluster)
    {
        public static Placement Of(Workload? w) => w is null
            ? default
            : new(true, w.Network, w.Locality.Region, w.Locality.Zone, w.Locality.Subzone, w.Node, w.ClusterId);
    }
}
