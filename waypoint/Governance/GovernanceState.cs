using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Ambient.Mesh.Governance;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Mesh.State;
using Ambient.Waypoint.Routing;

namespace Ambient.Waypoint.Governance;

/// <summary>
/// The waypoint's governance state that outlives a config snapshot: one <see cref="LocalRateLimiter"/> per
/// HTTPLocalRateLimitPolicy and one <see cref="DestinationGovernance"/> per destination (service or subset). Each is
/// rebuilt only when the object it was built from changes, so a config push that does not touch a policy keeps its
/// buckets, breaker counts and ejections. Renders its gauges and counters into the waypoint's one metrics registry.
/// </summary>
internal sealed class GovernanceState
{
    private static readonly ConditionalWeakTable<MeshSnapshot, PolicyIndex> s_policies = [];

    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, LocalRateLimiter> _limiters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DestinationGovernance> _destinations = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Service, string Limit), long> _rateLimited = new();
    private readonly ConcurrentDictionary<(string Service, string Result), long> _retries = new();
    private readonly ConcurrentDictionary<(string Service, string Subset), long> _ejections = new();
    private readonly ConcurrentDictionary<(string Service, string Subset), long> _overflows = new();

    private MeshSnapshot? _pruned;

    public GovernanceState(TimeProvider time)
    {
        _time = time;
    }

    public TimeProvider Time => _time;

    /// <summary>A snapshot's rate-limit policies by target: Services by "ns/name", Servers by namespace.</summary>
    private sealed class PolicyIndex
    {
        public readonly Dictionary<string, List<HttpLocalRateLimitPolicy>> ByService = new(StringComparer.Ordinal);
        public readonly Dictionary<string, List<HttpLocalRateLimitPolicy>> ServerTargetsByNamespace = new(StringComparer.Ordinal);
        /// <summary>The policies in force for "ns/name:port", worked out once per snapshot.</summary>
        public readonly ConcurrentDictionary<string, HttpLocalRateLimitPolicy[]> ForServicePort = new(StringComparer.Ordinal);
    }

    /// <summary>
    /// The HTTPLocalRateLimitPolicies that apply to requests for <paramref name="service"/> on <paramref name="port"/>:
    /// those whose <c>targetRef</c> is that Service (group "", kind Service), and those whose <c>targetRef</c> is a
    /// Linkerd Server (policy.linkerd.io) selecting an endpoint of the service on the container port that service port
    /// leads to. Policy and target are in the same namespace. A Server policy limits the traffic this waypoint
    /// forwards to the Server's pods; its bucket is the policy's, whichever service the requests came through.
    /// </summary>
    public IReadOnlyList<LocalRateLimiter> LimitersFor(MeshSnapshot snapshot, Service service, int port)
    {
        var index = s_policies.GetValue(snapshot, static s =>
        {
            var built = new PolicyIndex();
            foreach (var p in s.ObjectsOf<HttpLocalRateLimitPolicy>().OrderBy(p => p.Namespace, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal))
            {
                var (map, key) = p.TargetRef.IsService ? (built.ByService, $"{p.Namespace}/{p.TargetRef.Name}") : (built.ServerTargetsByNamespace, p.Namespace);
                if (!map.TryGetValue(key, out var list))
                {
                    map[key] = list = [];
                }
                list.Add(p);
            }
            return built;
        });
        var policies = index.ForServicePort.GetOrAdd($"{service.Namespace}/{service.Name}:{port}", _ => InForce(snapshot, index, service, port));
        if (policies.Length == 0)
        {
            return [];
        }
        var result = new LocalRateLimiter[policies.Length];
        for (int i = 0; i < policies.Length; i++)
        {
            result[i] = Limiter(policies[i]);
        }
        return result;
    }

    private static HttpLocalRateLimitPolicy[] InForce(MeshSnapshot snapshot, PolicyIndex index, Service service, int port)
    {
        var result = new List<HttpLocalRateLimitPolicy>();
        if (index.ByService.TryGetValue($"{service.Namespace}/{service.Name}", out var direct))
        {
            result.AddRange(direct);
        }
        if (index.ServerTargetsByNamespace.TryGetValue(service.Namespace, out var viaServer))
        {
            foreach (var p in viaServer)
            {
                if (snapshot.FindObject($"Server/{p.Namespace}/{p.TargetRef.Name}") is LinkerdServer server && ServesPort(snapshot, server, service, port))
                {
                    result.Add(p);
                }
            }
        }
        return [.. result];
    }

    /// <summary>Whether an endpoint of the service is one of the Server's pods, reached on the Server's port.</summary>
    private static bool ServesPort(MeshSnapshot snapshot, LinkerdServer server, Service service, int port)
    {
        service.Ports.TryGetValue(port, out int serviceTarget);
        foreach (var w in snapshot.EndpointsOf(service))
        {
            if (!server.Selects(w))
            {
                continue;
            }
            int target = w.Services.TryGetValue(service.Key, out var map) && map.TryGetValue(port, out int t) && t != 0 ? t
                : serviceTarget != 0 ? serviceTarget : port;
            if (target == server.PortNumber)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The limiter for a policy, built again only when its limits changed (a new object with equal limits keeps its buckets).</summary>
    internal LocalRateLimiter Limiter(HttpLocalRateLimitPolicy policy)
    {
        string key = $"{policy.Namespace}/{policy.Name}";
        while (true)
        {
            if (_limiters.TryGetValue(key, out var current))
            {
                if (ReferenceEquals(current.Policy, policy) || SameLimits(current.Policy, policy))
                {
                    return current;
                }
                var rebuilt = new LocalRateLimiter(policy, _time);
                if (_limiters.TryUpdate(key, rebuilt, current))
                {
                    return rebuilt;
                }
                continue;
            }
            var created = new LocalRateLimiter(policy, _time);
            if (_limiters.TryAdd(key, created))
            {
                return created;
            }
        }
    }

    /// <summary>How many limiters are held (tests: one per policy, however many snapshots came by).</summary>
    internal int LimiterCount => _limiters.Count;

    private static bool SameLimits(HttpLocalRateLimitPolicy a, HttpLocalRateLimitPolicy b)
    {
        if (a.TargetRef != b.TargetRef || a.TotalRequestsPerSecond != b.TotalRequestsPerSecond
            || a.IdentityRequestsPerSecond != b.IdentityRequestsPerSecond || a.Overrides.Length != b.Overrides.Length)
        {
            return false;
        }
        for (int i = 0; i < a.Overrides.Length; i++)
        {
            if (a.Overrides[i].RequestsPerSecond != b.Overrides[i].RequestsPerSecond || !a.Overrides[i].ClientRefs.SequenceEqual(b.Overrides[i].ClientRefs))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The governance of a backend (service port, optionally a subset), with the DestinationRule's policy in force.</summary>
    public DestinationGovernance For(MeshSnapshot snapshot, Backend backend)
    {
        var dr = RouteIndex.For(snapshot).DestinationRuleFor(backend.Service);
        TrafficPolicy? policy = dr?.PolicyFor(backend.Port, backend.Subset);
        string key = $"{backend.Service.Key}:{backend.Port}|{backend.Subset}";
        while (true)
        {
            if (_destinations.TryGetValue(key, out var current))
            {
                if (SamePolicy(current.Policy, policy))
                {
                    return current;
                }
                var rebuilt = Create(snapshot, backend, policy);
                if (_destinations.TryUpdate(key, rebuilt, current))
                {
                    return rebuilt;
                }
                continue;
            }
            var created = Create(snapshot, backend, policy);
            if (_destinations.TryAdd(key, created))
            {
                return created;
            }
        }
    }

    private DestinationGovernance Create(MeshSnapshot snapshot, Backend backend, TrafficPolicy? policy)
    {
        var d = new DestinationGovernance(backend, policy, _time);
        if (d.Outliers is { } o)
        {
            o.SetHosts(Hosts(snapshot, backend));
            o.Ejected += (_, _) => _ejections.AddOrUpdate((d.Service, d.Subset ?? ""), 1, static (_, v) => v + 1);
        }
        return d;
    }

    private static IEnumerable<string> Hosts(MeshSnapshot snapshot, Backend backend)
    {
        foreach (var (w, _) in EndpointPicker.Candidates(snapshot, backend))
        {
            yield return w.Uid;
        }
    }

    // Only the parts governance uses decide; the rest (TLS, load balancer) does not reset breakers or ejections.
    private static bool SamePolicy(TrafficPolicy? a, TrafficPolicy? b) =>
        ReferenceEquals(a, b)
        || (a?.ConnectionPool == b?.ConnectionPool && a?.RetryBudget == b?.RetryBudget && SameOutlier(a?.OutlierDetection, b?.OutlierDetection));

    private static bool SameOutlier(OutlierDetection? a, OutlierDetection? b) =>
        ReferenceEquals(a, b)
        || (a is not null && b is not null && a with { OutlierDetectionHttpErrorCodes = [] } == b with { OutlierDetectionHttpErrorCodes = [] }
            && a.OutlierDetectionHttpErrorCodes.SequenceEqual(b.OutlierDetectionHttpErrorCodes));

    /// <summary>
    /// Envoy's ejection sweep for every destination whose <c>interval</c> has passed: the endpoints are refreshed from
    /// <paramref name="snapshot"/> (new pods start healthy, gone ones are forgotten) and expired ejections end.
    /// </summary>
    public void Sweep(MeshSnapshot snapshot)
    {
        if (!ReferenceEquals(snapshot, Volatile.Read(ref _pruned)))
        {
            Volatile.Write(ref _pruned, snapshot);
            Prune(snapshot);
        }
        var now = _time.GetUtcNow();
        foreach (var d in _destinations.Values)
        {
            if (d.Outliers is not { } o || now < d.NextSweep)
            {
                continue;
            }
            d.NextSweep = now + o.Settings.EffectiveInterval;
            o.SetHosts(Hosts(snapshot, d.Backend));
            o.Sweep();
        }
    }

    /// <summary>Drops the state of services and policies a new snapshot no longer has, so churn does not pile up.</summary>
    private void Prune(MeshSnapshot snapshot)
    {
        var index = RouteIndex.For(snapshot);
        foreach (var (key, d) in _destinations)
        {
            if (index.Service(d.Backend.Service.Namespace, d.Backend.Service.Name) is null)
            {
                _destinations.TryRemove(key, out _);
            }
        }
        if (_limiters.IsEmpty)
        {
            return;
        }
        var policies = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in snapshot.ObjectsOf<HttpLocalRateLimitPolicy>())
        {
            policies.Add($"{p.Namespace}/{p.Name}");
        }
        foreach (var key in _limiters.Keys)
        {
            if (!policies.Contains(key))
            {
                _limiters.TryRemove(key, out _);
            }
        }
    }

    /// <summary>Destinations held (tests).</summary>
    internal int DestinationCount => _destinations.Count;

    public void RateLimited(Service service, RateLimitVerdict verdict) =>
        _rateLimited.AddOrUpdate((service.Hostname, verdict == RateLimitVerdict.Total ? "total" : "client"), 1, static (_, v) => v + 1);

    public void Retried(string service, string result) => _retries.AddOrUpdate((service, result), 1, static (_, v) => v + 1);

    public void Overflow(DestinationGovernance d) => _overflows.AddOrUpdate((d.Service, d.Subset ?? ""), 1, static (_, v) => v + 1);

    /// <summary>Appends the governance series to the waypoint's Prometheus exposition.</summary>
    public void Render(StringBuilder sb)
    {
        sb.Append("# HELP ambient_rate_limited_total Requests refused with 429 by an HTTPLocalRateLimitPolicy.\n# TYPE ambient_rate_limited_total counter\n");
        foreach (var ((service, limit), n) in _rateLimited.OrderBy(k => k.Key))
        {
            sb.Append("ambient_rate_limited_total{destination_service=\"").Append(service).Append("\",limit=\"").Append(limit).Append("\"} ").Append(n).Append('\n');
        }
        sb.Append("# HELP ambient_retries_total Retries by result (retried, exhausted, overflow).\n# TYPE ambient_retries_total counter\n");
        foreach (var ((service, result), n) in _retries.OrderBy(k => k.Key))
        {
            sb.Append("ambient_retries_total{destination_service=\"").Append(service).Append("\",result=\"").Append(result).Append("\"} ").Append(n).Append('\n');
        }
        sb.Append("# HELP ambient_circuit_breaker_overflow_total Requests refused with 503 UO by a connectionPool limit.\n# TYPE ambient_circuit_breaker_overflow_total counter\n");
        foreach (var ((service, subset), n) in _overflows.OrderBy(k => k.Key))
        {
            sb.Append("ambient_circuit_breaker_overflow_total{destination_service=\"").Append(service).Append("\",subset=\"").Append(subset).Append("\"} ").Append(n).Append('\n');
        }
        var destinations = _destinations.Values.OrderBy(d => d.Service, StringComparer.Ordinal).ThenBy(d => d.Subset, StringComparer.Ordinal).ToArray();
        sb.Append("# HELP ambient_circuit_breaker_remaining Capacity left before a connectionPool limit opens the breaker (Envoy's remaining_*).\n# TYPE ambient_circuit_breaker_remaining gauge\n");
        foreach (var d in destinations)
        {
            Gauge(sb, d, "connections", d.ConnectionsRemaining);
            Gauge(sb, d, "pending", d.Breaker.Pending.Remaining);
            Gauge(sb, d, "requests", d.Breaker.Requests.Remaining);
            Gauge(sb, d, "retries", d.Breaker.Retries.Remaining);
        }
        sb.Append("# HELP ambient_outlier_ejections_total Endpoints ejected by outlier detection.\n# TYPE ambient_outlier_ejections_total counter\n");
        foreach (var ((service, subset), n) in _ejections.OrderBy(k => k.Key))
        {
            sb.Append("ambient_outlier_ejections_total{destination_service=\"").Append(service).Append("\",subset=\"").Append(subset).Append("\"} ").Append(n).Append('\n');
        }
        sb.Append("# HELP ambient_outlier_ejected Endpoints ejected now.\n# TYPE ambient_outlier_ejected gauge\n");
        foreach (var d in destinations)
        {
            if (d.Outliers is { } o)
            {
                sb.Append("ambient_outlier_ejected{destination_service=\"").Append(d.Service).Append("\",port=\"").Append(d.Backend.Port).Append("\",subset=\"").Append(d.Subset ?? "").Append("\"} ")
                    .Append(o.EjectedCount.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
    }

    private static void Gauge(StringBuilder sb, DestinationGovernance d, string resource, long value) =>
        sb.Append("ambient_circuit_breaker_remaining{destination_service=\"").Append(d.Service).Append("\",port=\"").Append(d.Backend.Port).Append("\",subset=\"").Append(d.Subset ?? "")
            .Append("\",resource=\"").Append(resource).Append("\"} ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
}
