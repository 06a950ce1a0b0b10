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
/// on the client, so those services pay a scan per connection; every other service keeps the binary search.
/// </remarks>
internal sealed class EndpointSet
{
    private readonly Workload[] _workloads;
    private readonly int[] _targetPorts;
    private readonly long[] _cumulative;
    private readonly LoadBalancing? _ranked;

    private EndpointSet(Workload[] workloads, int[] targetPorts, long[] cumulative, LoadBalancing? ranked)
    {
        _workloads = workloads;
        _targetPorts = targetPorts;
        _cumulative = cumulative;
        _ranked = ranked;
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
        if (_ranked is not { } lb)
        {
            long r = random.NextInt64(_cumulative[^1]);
            int i = Array.BinarySearch(_cumulative, r + 1);
            if (i < 0)
            {
                i = ~i;
            }
            return (_workloads[i], _targetPorts[i]);
        }

        int required = lb.Mode == LoadBalancingMode.Strict ? lb.RoutingPreference.Length : 0;
        int best = -1;
        long weight = 0;
        for (int i = 0; i < _workloads.Length; i++)
        {
            int rank = Rank(lb, source, _workloads[i]);
            if (rank < required || rank < best)
            {
                continue;
            }
            if (rank > best)
            {
                best = rank;
                weight = 0;
            }
            weight += Weight(_workloads[i]);
        }
        if (best < 0)
        {
            return null;
        }
        long pick = random.NextInt64(weight);
        for (int i = 0; i < _workloads.Length; i++)
        {
            if (Rank(lb, source, _workloads[i]) != best)
            {
                continue;
            }
            pick -= Weight(_workloads[i]);
            if (pick < 0)
            {
                return (_workloads[i], _targetPorts[i]);
            }
        }
        return null; // unreachable: the weights above add up to more than pick
    }

    /// <summary>How many of the routing preferences, in order, <paramref name="endpoint"/> shares with the client (Istio's rank).</summary>
    internal static int Rank(LoadBalancing lb, Workload? source, Workload endpoint)
    {
        if (source is null)
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
                LoadBalancingScope.Region => source.Locality.Region == endpoint.Locality.Region,
                LoadBalancingScope.Zone => source.Locality.Zone == endpoint.Locality.Zone,
                LoadBalancingScope.Subzone => source.Locality.Subzone == endpoint.Locality.Subzone,
                LoadBalancingScope.Node => source.Node == endpoint.Node,
                LoadBalancingScope.Cluster => source.ClusterId == endpoint.ClusterId,
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
}
