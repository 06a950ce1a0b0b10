using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.State;

/// <summary>
/// An indexed, immutable view of one config: the agent swaps the whole snapshot on change, so one
/// connection sees one consistent config.
/// </summary>
/// <remarks>
/// Every index is built once in <see cref="Build"/> (linear in the config's size) into frozen dictionaries
/// and pre-computed arrays, so lookups on the connection path are O(1) and allocate nothing.
/// </remarks>
public sealed class MeshSnapshot
{
    private static readonly Workload[] NoWorkloads = [];

    private readonly FrozenDictionary<(string Network, IpKey Ip), Workload> _workloadsByIp;
    private readonly FrozenDictionary<string, Workload> _workloadsByUid;
    private readonly FrozenDictionary<(string Namespace, string Name), Workload> _workloadsByName;
    private readonly FrozenDictionary<(string Network, IpKey Ip), Service> _servicesByVip;
    private readonly FrozenDictionary<string, Service> _servicesByKey;
    private readonly FrozenDictionary<(string Namespace, string Hostname), Workload[]> _endpoints;
    private readonly FrozenDictionary<string, Workload[]> _byNode;
    private readonly FrozenDictionary<string, PolicySet> _policiesByNamespace;
    private readonly FrozenDictionary<string, PolicySet> _policiesByWorkloadUid;
    private readonly FrozenDictionary<string, AuthorizationPolicy> _policiesByKey;
    private readonly PolicySet _globalPolicies;

    private MeshSnapshot(MeshConfig config, long version)
    {
        Config = config;
        Version = version;

        var byIp = new Dictionary<(string, IpKey), Workload>();
        var byUid = new Dictionary<string, Workload>(StringComparer.Ordinal);
        var byName = new Dictionary<(string, string), Workload>();
        var endpoints = new Dictionary<(string, string), List<Workload>>();
        var byNode = new Dictionary<string, List<Workload>>(StringComparer.Ordinal);
        foreach (Workload w in config.Workloads)
        {
            // The loader rejects duplicates; a config built in code may still have them: first one wins,
            // so a lookup never flips between two workloads from one snapshot to the next.
            byUid.TryAdd(w.Uid, w);
            byName.TryAdd((w.Namespace, w.Name), w);
            if (w.NetworkMode != NetworkMode.HostNetwork)
            {
                foreach (IPAddress ip in w.WorkloadIps)
                {
                    byIp.TryAdd((w.Network, IpKey.From(ip)), w);
                }
            }
            foreach (string serviceKey in w.Services.Keys)
            {
                int slash = serviceKey.IndexOf('/');
                if (slash > 0)
                {
                    Add(endpoints, (serviceKey[..slash], serviceKey[(slash + 1)..]), w);
                }
            }
            Add(byNode, w.Node, w);
        }

        var byVip = new Dictionary<(string, IpKey), Service>();
        var byKey = new Dictionary<string, Service>(StringComparer.Ordinal);
        foreach (Service s in config.Services)
        {
            byKey.TryAdd(s.Key, s);
            foreach (NetworkAddress vip in s.Vips)
            {
                byVip.TryAdd((vip.Network, IpKey.From(vip.Address)), s);
            }
        }

        var policiesByKey = new Dictionary<string, AuthorizationPolicy>(StringComparer.Ordinal);
        var global = new List<AuthorizationPolicy>();
        var byNamespace = new Dictionary<string, List<AuthorizationPolicy>>(StringComparer.Ordinal);
        foreach (AuthorizationPolicy p in config.Policies)
        {
            if (!policiesByKey.TryAdd(p.Key, p))
            {
                continue;
            }
            switch (p.Scope)
            {
                case PolicyScope.Global:
                    global.Add(p);
                    break;
                case PolicyScope.Namespace:
                    Add(byNamespace, p.Namespace, p);
                    break;
                case PolicyScope.WorkloadSelector:
                    break; // applied through Workload.AuthorizationPolicies only, as in ztunnel
            }
        }
        _globalPolicies = PolicySet.Create(global);

        // Namespace sets include the global policies, so a destination needs one lookup. Workloads that list
        // policies of their own get a set of their own (namespace + global + theirs, without duplicates).
        var nsSets = new Dictionary<string, PolicySet>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, List<AuthorizationPolicy>> kv in byNamespace)
        {
            var combined = new List<AuthorizationPolicy>(kv.Value.Count + global.Count);
            combined.AddRange(kv.Value);
            combined.AddRange(global);
            nsSets[kv.Key] = PolicySet.Create(combined);
        }
        var wlSets = new Dictionary<string, PolicySet>(StringComparer.Ordinal);
        foreach (Workload w in byUid.Values)
        {
            if (w.AuthorizationPolicies.IsEmpty)
            {
                continue;
            }
            var combined = new List<AuthorizationPolicy>();
            if (byNamespace.TryGetValue(w.Namespace, out List<AuthorizationPolicy>? nsPolicies))
            {
                combined.AddRange(nsPolicies);
            }
            combined.AddRange(global);
            foreach (string key in w.AuthorizationPolicies)
            {
                // Unknown keys are skipped, as ztunnel does ("skipping unknown policy").
                if (policiesByKey.TryGetValue(key, out AuthorizationPolicy? p) && !ContainsReference(combined, p))
                {
                    combined.Add(p);
                }
            }
            wlSets[w.Uid] = PolicySet.Create(combined);
        }

        _workloadsByIp = byIp.ToFrozenDictionary();
        _workloadsByUid = byUid.ToFrozenDictionary(StringComparer.Ordinal);
        _workloadsByName = byName.ToFrozenDictionary();
        _servicesByVip = byVip.ToFrozenDictionary();
        _servicesByKey = byKey.ToFrozenDictionary(StringComparer.Ordinal);
        _endpoints = ToArrays(endpoints);
        _byNode = ToArrays(byNode, StringComparer.Ordinal);
        _policiesByKey = policiesByKey.ToFrozenDictionary(StringComparer.Ordinal);
        _policiesByNamespace = nsSets.ToFrozenDictionary(StringComparer.Ordinal);
        _policiesByWorkloadUid = wlSets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public static MeshSnapshot Build(MeshConfig config, long version) => new(config, version);

    public MeshConfig Config { get; }
    public long Version { get; }

    public Workload? FindWorkloadByIp(IPAddress ip, string network = "") =>
        _workloadsByIp.GetValueOrDefault((network, IpKey.From(ip)));

    public Workload? FindWorkloadByUid(string uid) => _workloadsByUid.GetValueOrDefault(uid);

    public Workload? FindWorkload(string ns, string name) => _workloadsByName.GetValueOrDefault((ns, name));

    public Service? FindServiceByVip(IPAddress ip, string network = "") =>
        _servicesByVip.GetValueOrDefault((network, IpKey.From(ip)));

    public Service? FindService(string key) => _servicesByKey.GetValueOrDefault(key);

    /// <summary>Workloads that list this service (ports mapped per workload), unhealthy ones included.</summary>
    public IReadOnlyList<Workload> EndpointsOf(Service service) =>
        _endpoints.GetValueOrDefault((service.Namespace, service.Hostname)) ?? NoWorkloads;

    public IReadOnlyList<Workload> WorkloadsOnNode(string node) => _byNode.GetValueOrDefault(node) ?? NoWorkloads;

    /// <summary>Policies that apply to a destination workload: Global, its Namespace, and its WorkloadSelector ones.</summary>
    public IReadOnlyList<AuthorizationPolicy> PoliciesFor(Workload destination) => PolicySetFor(destination).All;

    public AuthorizationPolicy? FindPolicy(string key) => _policiesByKey.GetValueOrDefault(key);

    /// <summary>The applicable policies split by what they can decide, for <see cref="Policy.Authorizer"/>.</summary>
    internal PolicySet PolicySetFor(Workload destination)
    {
        if (!destination.AuthorizationPolicies.IsEmpty)
        {
            if (_policiesByWorkloadUid.TryGetValue(destination.Uid, out PolicySet? own))
            {
                return own;
            }
            // A workload this snapshot does not know (e.g. from an older snapshot): build its set on the
            // spot. This allocates, but only on that rare path.
            return BuildFor(destination);
        }
        return _policiesByNamespace.GetValueOrDefault(destination.Namespace) ?? _globalPolicies;
    }

    private PolicySet BuildFor(Workload destination)
    {
        var combined = new List<AuthorizationPolicy>(PolicySetFor(destination with { AuthorizationPolicies = [] }).All);
        foreach (string key in destination.AuthorizationPolicies)
        {
            if (_policiesByKey.TryGetValue(key, out AuthorizationPolicy? p) && !ContainsReference(combined, p))
            {
                combined.Add(p);
            }
        }
        return PolicySet.Create(combined);
    }

    private static bool ContainsReference(List<AuthorizationPolicy> list, AuthorizationPolicy p)
    {
        foreach (AuthorizationPolicy x in list)
        {
            if (ReferenceEquals(x, p))
            {
                return true;
            }
        }
        return false;
    }

    private static void Add<TKey, TValue>(Dictionary<TKey, List<TValue>> map, TKey key, TValue value)
        where TKey : notnull
    {
        if (!map.TryGetValue(key, out List<TValue>? list))
        {
            list = [];
            map[key] = list;
        }
        list.Add(value);
    }

    private static FrozenDictionary<TKey, Workload[]> ToArrays<TKey>(Dictionary<TKey, List<Workload>> map, IEqualityComparer<TKey>? comparer = null)
        where TKey : notnull
    {
        var arrays = new Dictionary<TKey, Workload[]>(map.Count, comparer);
        foreach (KeyValuePair<TKey, List<Workload>> kv in map)
        {
            arrays[kv.Key] = [.. kv.Value];
        }
        return arrays.ToFrozenDictionary(comparer);
    }
}

/// <summary>
/// The policies that apply to one destination, pre-split the way Istio evaluates them: enforced DENY,
/// enforced ALLOW, and dry-run (never decide, only reported). Keys are cached so a verdict allocates nothing.
/// </summary>
internal sealed class PolicySet
{
    private PolicySet(AuthorizationPolicy[] all, AuthorizationPolicy[] deny, AuthorizationPolicy[] allow, AuthorizationPolicy[] dryRun)
    {
        All = all;
        Deny = deny;
        DenyKeys = Keys(deny);
        Allow = allow;
        AllowKeys = Keys(allow);
        DryRun = dryRun;
        DryRunKeys = Keys(dryRun);
    }

    public AuthorizationPolicy[] All { get; }
    public AuthorizationPolicy[] Deny { get; }
    public string[] DenyKeys { get; }
    public AuthorizationPolicy[] Allow { get; }
    public string[] AllowKeys { get; }
    public AuthorizationPolicy[] DryRun { get; }
    public string[] DryRunKeys { get; }

    public static PolicySet Create(List<AuthorizationPolicy> policies)
    {
        var deny = new List<AuthorizationPolicy>();
        var allow = new List<AuthorizationPolicy>();
        var dry = new List<AuthorizationPolicy>();
        foreach (AuthorizationPolicy p in policies)
        {
            (p.DryRun ? dry : p.Action == PolicyAction.Deny ? deny : allow).Add(p);
        }
        return new PolicySet([.. policies], [.. deny], [.. allow], [.. dry]);
    }

    private static string[] Keys(AuthorizationPolicy[] policies)
    {
        var keys = new string[policies.Length];
        for (int i = 0; i < policies.Length; i++)
        {
            keys[i] = policies[i].Key;
        }
        return keys;
    }
}
