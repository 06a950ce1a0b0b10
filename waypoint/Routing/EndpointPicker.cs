using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Ambient.Mesh.Governance;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Mesh.State;
using Ambient.Waypoint.Hbone;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Routing;

/// <summary>One endpoint chosen for a request: the pod, the port to dial on it, and its in-flight count to release.</summary>
internal readonly record struct PickedEndpoint(Workload Workload, IPAddress Address, int Port, EndpointPicker.Load? Load);

/// <summary>
/// Picks the pod a request goes to among a service port's healthy endpoints (narrowed to a DestinationRule subset's
/// labels when the route names one), with the DestinationRule's <c>loadBalancer</c>: LEAST_REQUEST by default (two
/// random choices, the one with fewer requests in flight, as Envoy does), ROUND_ROBIN, RANDOM, or consistentHash on a
/// header, cookie, query parameter or the source IP (rendezvous hashing, so few keys move when endpoints change).
/// With outlier detection on, endpoints are first narrowed by locality (<see cref="LocalityPriority"/>).
/// </summary>
/// <param name="identity">The waypoint itself: its pod's locality is where "local" is (none in table tests).</param>
internal sealed class EndpointPicker(WaypointIdentity? identity = null)
{
    private readonly ConcurrentDictionary<string, Load> _loads = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongCounter> _roundRobin = new(StringComparer.Ordinal);

    /// <summary>Requests in flight to one endpoint (for LEAST_REQUEST).</summary>
    internal sealed class Load
    {
        public int InFlight;

        public void Release() => Interlocked.Decrement(ref InFlight);
    }

    private sealed class StrongCounter
    {
        public long Value;
    }

    /// <param name="outliers">Endpoints it ejected are skipped (all are used in its panic mode).</param>
    /// <param name="avoid">Workload uids already tried by this request: skipped while another endpoint is left.</param>
    public PickedEndpoint? Pick(MeshSnapshot snapshot, Backend backend, HttpRequest request, IPAddress client, OutlierDetector<string>? outliers = null, IReadOnlySet<string>? avoid = null)
    {
        var candidates = Candidates(snapshot, backend);
        var all = candidates;
        if (outliers is { EjectedCount: > 0 })
        {
            candidates = WithoutEjected(candidates, outliers);
        }
        var dr = RouteIndex.For(snapshot).DestinationRuleFor(backend.Service);
        var policy = Policy(dr, backend.Subset);
        if (policy?.LocalityLbSetting?.Enabled != false && candidates.Count > 0 && identity?.Self(snapshot) is { } self)
        {
            candidates = ByLocality(all, candidates, self, policy?.LocalityLbSetting, outliers is not null, Random.Shared.NextDouble());
        }
        if (avoid is { Count: > 0 })
        {
            var rest = candidates.FindAll(c => !avoid.Contains(c.Workload.Uid));
            if (rest.Count > 0)
            {
                candidates = rest;
            }
        }
        if (candidates.Count == 0)
        {
            return null;
        }
        int i;
        if (candidates.Count == 1)
        {
            i = 0;
        }
        else if (policy?.ConsistentHash is { } hash)
        {
            i = HashPick(candidates, HashKey(hash, request, client));
        }
        else
        {
            switch (policy?.Simple)
            {
                case SimpleLoadBalancer.RoundRobin:
                    var counter = _roundRobin.GetOrAdd($"{backend.Service.Key}:{backend.Port}:{backend.Subset}", static _ => new StrongCounter());
                    i = (int)(Interlocked.Increment(ref counter.Value) % candidates.Count);
                    break;
                case SimpleLoadBalancer.Random:
                    i = Random.Shared.Next(candidates.Count);
                    break;
                default:
                    // LEAST_REQUEST (Istio's default) and LEAST_CONN: power of two choices.
                    int a = Random.Shared.Next(candidates.Count);
                    int b = Random.Shared.Next(candidates.Count - 1);
                    if (b >= a)
                    {
                        b++;
                    }
                    i = LoadOf(candidates[a].Workload).InFlight <= LoadOf(candidates[b].Workload).InFlight ? a : b;
                    break;
            }
        }
        var (w, port) = candidates[i];
        var load = LoadOf(w);
        Interlocked.Increment(ref load.InFlight);
        return new PickedEndpoint(w, PickIp(w), port, load);
    }

    /// <summary>
    /// Istio's locality load balancing (<see cref="LocalityPriority"/>), on by default: <c>distribute</c> weights
    /// apply whenever an entry's <c>from</c> matches the waypoint's locality; failover (by locality, or by
    /// <c>failoverPriority</c> labels) only with outlier detection, the signal that moves traffic away from a failing
    /// locality, as Istio requires.
    /// </summary>
    internal static List<(Workload Workload, int Port)> ByLocality(
        List<(Workload Workload, int Port)> all, List<(Workload Workload, int Port)> candidates, Workload self, LocalityLbSetting? setting, bool outlierDetection, double draw)
    {
        bool located = self.Locality.Region.Length > 0;
        if (setting is { Distribute.IsDefaultOrEmpty: false })
        {
            return located ? LocalityPriority.Distribute(all, candidates, self.Locality, setting.Distribute, draw) ?? candidates : candidates;
        }
        if (!outlierDetection || candidates.Count < 2)
        {
            return candidates;
        }
        if (setting is { FailoverPriority.IsDefaultOrEmpty: false })
        {
            return LocalityPriority.NarrowByLabels(all, candidates, self, setting, draw);
        }
        return located ? LocalityPriority.Narrow(all, candidates, self.Locality, setting, draw) : candidates;
    }

    private static List<(Workload Workload, int Port)> WithoutEjected(List<(Workload Workload, int Port)> candidates, OutlierDetector<string> outliers)
    {
        var uids = candidates.ConvertAll(c => c.Workload.Uid);
        var keep = outliers.Select(uids);
        if (keep.Count == uids.Count)
        {
            return candidates;
        }
        var set = new HashSet<string>(keep, StringComparer.Ordinal);
        return candidates.FindAll(c => set.Contains(c.Workload.Uid));
    }

    /// <summary>The subset's own policy wins over the rule's top-level one.</summary>
    private static LoadBalancerSettings? Policy(DestinationRule? dr, string? subset)
    {
        if (dr is null)
        {
            return null;
        }
        if (subset is not null)
        {
            foreach (var s in dr.Subsets)
            {
                if (s.Name == subset && s.TrafficPolicy?.LoadBalancer is { } sub)
                {
                    return sub;
                }
            }
        }
        return dr.TrafficPolicy?.LoadBalancer;
    }

    internal static List<(Workload Workload, int Port)> Candidates(MeshSnapshot snapshot, Backend backend)
    {
        var service = backend.Service;
        service.Ports.TryGetValue(backend.Port, out int serviceTarget);
        var result = new List<(Workload, int)>();
        foreach (var w in snapshot.EndpointsOf(service))
        {
            if (w.Status != HealthStatus.Healthy || w.WorkloadIps.IsDefaultOrEmpty)
            {
                continue;
            }
            if (backend.SubsetLabels is { } labels && !labels.All(kv => w.Labels.TryGetValue(kv.Key, out var v) && v == kv.Value))
            {
                continue;
            }
            // The workload's own mapping wins (it knows its named target port); then the service's; then the port.
            int target = 0;
            if (w.Services.TryGetValue(service.Key, out var map) && map.TryGetValue(backend.Port, out int wt))
            {
                target = wt;
            }
            if (target == 0)
            {
                target = serviceTarget != 0 ? serviceTarget : backend.Port;
            }
            result.Add((w, target));
        }
        return result;
    }

    private Load LoadOf(Workload w) => _loads.GetOrAdd(w.Uid, static _ => new Load());

    private static string? HashKey(ConsistentHashLb hash, HttpRequest request, IPAddress client) => hash.Key switch
    {
        HashKeyType.HttpHeaderName => hash.KeyName is { } h && request.Headers.TryGetValue(h, out var v) ? v.ToString() : null,
        HashKeyType.HttpQueryParameterName => hash.KeyName is { } q && request.Query.TryGetValue(q, out var v) ? v.ToString() : null,
        HashKeyType.HttpCookie => hash.Cookie?.Name is { } c ? request.Cookies[c] : null,
        HashKeyType.UseSourceIp => client.ToString(),
        _ => null,
    };

    /// <summary>Rendezvous (highest random weight) hashing; a request without the key goes to a random endpoint.</summary>
    internal static int HashPick(List<(Workload Workload, int Port)> candidates, string? key)
    {
        if (key is null)
        {
            return Random.Shared.Next(candidates.Count);
        }
        int best = 0;
        ulong bestScore = 0;
        for (int i = 0; i < candidates.Count; i++)
        {
            ulong score = Fnv1a(key, candidates[i].Workload.Uid);
            if (i == 0 || score > bestScore)
            {
                best = i;
                bestScore = score;
            }
        }
        return best;
    }

    /// <summary>64-bit FNV-1a over key, a separator and the endpoint: deterministic, so replicas agree.</summary>
    private static ulong Fnv1a(string key, string endpoint)
    {
        ulong h = 14695981039346656037;
        foreach (byte b in Encoding.UTF8.GetBytes(key + "\n" + endpoint))
        {
            h = (h ^ b) * 1099511628211;
        }
        // FNV's low bits mix poorly for near-equal inputs; a final avalanche spreads them.
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccd;
        h ^= h >> 33;
        return h;
    }

    private static IPAddress PickIp(Workload w)
    {
        foreach (var ip in w.WorkloadIps)
        {
            if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            {
                return ip;
            }
        }
        return w.WorkloadIps[0];
    }
}
