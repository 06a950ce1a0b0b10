using Ambient.Mesh.Model;

namespace Ambient.Ztunnel.State;

/// <summary>
/// The healthy endpoints of one service port with cumulative capacity weights, so a weighted random pick is a
/// binary search instead of a scan. Built once per (snapshot, service, port) and cached.
/// </summary>
internal sealed class EndpointSet
{
    private readonly Workload[] _workloads;
    private readonly int[] _targetPorts;
    private readonly long[] _cumulative;

    private EndpointSet(Workload[] workloads, int[] targetPorts, long[] cumulative)
    {
        _workloads = workloads;
        _targetPorts = targetPorts;
        _cumulative = cumulative;
    }

    public int Count => _workloads.Length;

    public static EndpointSet Build(Service service, int servicePort, IReadOnlyList<Workload> endpoints)
    {
        var ws = new List<Workload>(endpoints.Count);
        var ports = new List<int>(endpoints.Count);
        var cum = new List<long>(endpoints.Count);
        long total = 0;
        service.Ports.TryGetValue(servicePort, out int serviceTarget);
        for (int i = 0; i < endpoints.Count; i++)
        {
            var w = endpoints[i];
            if (w.Status != HealthStatus.Healthy || w.WorkloadIps.IsDefaultOrEmpty)
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
            total += Math.Max(1, w.Capacity);
            ws.Add(w);
            ports.Add(target);
            cum.Add(total);
        }
        return new EndpointSet([.. ws], [.. ports], [.. cum]);
    }

    /// <summary>Weighted random by capacity; null when there is no healthy endpoint.</summary>
    public (Workload Workload, int TargetPort)? Pick(Random random)
    {
        if (_workloads.Length == 0)
        {
            return null;
        }
        long r = random.NextInt64(_cumulative[^1]);
        int i = Array.BinarySearch(_cumulative, r + 1);
        if (i < 0)
        {
            i = ~i;
        }
        return (_workloads[i], _targetPorts[i]);
    }
}
