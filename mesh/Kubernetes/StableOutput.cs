using System.Collections.Immutable;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;

namespace Ambient.Mesh.Kubernetes;

/// <summary>
/// The previous run's output, so that a resource that did not change keeps its instance: a store can then find
/// what changed among 10,000 workloads by reference (<see cref="object.ReferenceEquals"/>), and record equality
/// (which compares immutable collections by reference) agrees with "nothing changed".
/// </summary>
internal sealed class StableOutput
{
    public static readonly StableOutput Empty = new(MeshResources.Empty);

    private readonly Dictionary<string, Workload> _workloads;
    private readonly Dictionary<string, Service> _services;
    private readonly Dictionary<string, AuthorizationPolicy> _policies;
    private readonly Dictionary<string, MeshObject> _objects;

    public StableOutput(MeshResources r)
    {
        _workloads = new(r.Workloads.Length, StringComparer.Ordinal);
        foreach (Workload w in r.Workloads)
        {
            _workloads.TryAdd(w.Uid, w);
        }
        _services = new(r.Services.Length, StringComparer.Ordinal);
        foreach (Service s in r.Services)
        {
            _services.TryAdd(s.Key, s);
        }
        _policies = new(r.Policies.Length, StringComparer.Ordinal);
        foreach (AuthorizationPolicy p in r.Policies)
        {
            _policies.TryAdd(p.Key, p);
        }
        _objects = new(r.Objects.Length, StringComparer.Ordinal);
        foreach (MeshObject o in r.Objects)
        {
            _objects.TryAdd(o.Key, o);
        }
    }

    /// <summary>The resources with every one equal to its previous version replaced by that version.</summary>
    public MeshResources Reuse(MeshResources r) => new()
    {
        Workloads = Reuse(r.Workloads, _workloads, static w => w.Uid, SameWorkload),
        Services = Reuse(r.Services, _services, static s => s.Key, SameService),
        Policies = Reuse(r.Policies, _policies, static p => p.Key, static (a, b) => a == b),
        Objects = Reuse(r.Objects, _objects, static o => o.Key, SameObject),
    };

    private static ImmutableArray<T> Reuse<T>(ImmutableArray<T> current, Dictionary<string, T> previous, Func<T, string> key, Func<T, T, bool> same)
        where T : class
    {
        if (previous.Count == 0)
        {
            return current;
        }
        T[]? copy = null;
        for (int i = 0; i < current.Length; i++)
        {
            T c = current[i];
            if (previous.TryGetValue(key(c), out T? p) && !ReferenceEquals(p, c) && same(p, c))
            {
                copy ??= current.ToArray();
                copy[i] = p;
            }
        }
        return copy is null ? current : System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(copy);
    }

    // Field by field, collections by content. StableOutputTests changes every settable property of Workload and
    // Service in turn and fails when a change would go unnoticed, so a field added to the model cannot be missed.

    private static bool SameWorkload(Workload a, Workload b) =>
        a.Uid == b.Uid && a.Name == b.Name && a.Namespace == b.Namespace && a.ServiceAccount == b.ServiceAccount
        && a.TrustDomain == b.TrustDomain && a.Protocol == b.Protocol && a.NetworkMode == b.NetworkMode
        && a.Node == b.Node && a.Network == b.Network && a.ClusterId == b.ClusterId && a.WorkloadName == b.WorkloadName
        && a.WorkloadType == b.WorkloadType && a.CanonicalName == b.CanonicalName && a.CanonicalRevision == b.CanonicalRevision
        && a.Hostname == b.Hostname && a.Status == b.Status && a.Capacity == b.Capacity
        && a.Locality == b.Locality && a.Waypoint == b.Waypoint
        && a.WorkloadIps.AsSpan().SequenceEqual(b.WorkloadIps.AsSpan())
        && a.AuthorizationPolicies.AsSpan().SequenceEqual(b.AuthorizationPolicies.AsSpan())
        && SameMap(a.Labels, b.Labels)
        && SameServices(a.Services, b.Services);

    private static bool SameService(Service a, Service b) =>
        a.Vips.AsSpan().SequenceEqual(b.Vips.AsSpan())
        && a.SubjectAltNames.AsSpan().SequenceEqual(b.SubjectAltNames.AsSpan())
        && SameMap(a.Ports, b.Ports)
        && SameLoadBalancing(a.LoadBalancing, b.LoadBalancing)
        && a with { Vips = b.Vips, SubjectAltNames = b.SubjectAltNames, Ports = b.Ports, LoadBalancing = b.LoadBalancing } == b;

    private static bool SameLoadBalancing(LoadBalancing? a, LoadBalancing? b) =>
        a is null || b is null
            ? a is null && b is null
            : a.RoutingPreference.AsSpan().SequenceEqual(b.RoutingPreference.AsSpan()) && a with { RoutingPreference = b.RoutingPreference } == b;

    /// <summary>Parsed-once objects are the same instance already; waypoints are rebuilt each run and compared here.</summary>
    private static bool SameObject(MeshObject a, MeshObject b) => a is Waypoint x && b is Waypoint y
        ? x.Listeners.AsSpan().SequenceEqual(y.Listeners.AsSpan())
          && x.Addresses.AsSpan().SequenceEqual(y.Addresses.AsSpan())
          && SameMap(x.NamespaceSelector, y.NamespaceSelector)
          && x with { Listeners = y.Listeners, Addresses = y.Addresses, NamespaceSelector = y.NamespaceSelector } == y
        : a == b;

    private static bool SameServices(ImmutableDictionary<string, ImmutableDictionary<int, int>> a, ImmutableDictionary<string, ImmutableDictionary<int, int>> b)
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }
        if (a.Count != b.Count)
        {
            return false;
        }
        foreach (KeyValuePair<string, ImmutableDictionary<int, int>> kv in a)
        {
            if (!b.TryGetValue(kv.Key, out ImmutableDictionary<int, int>? other) || !SameMap(kv.Value, other))
            {
                return false;
            }
        }
        return true;
    }

    private static bool SameMap<TKey, TValue>(ImmutableDictionary<TKey, TValue> a, ImmutableDictionary<TKey, TValue> b)
        where TKey : notnull
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }
        if (a.Count != b.Count)
        {
            return false;
        }
        foreach (KeyValuePair<TKey, TValue> kv in a)
        {
            if (!b.TryGetValue(kv.Key, out TValue? v) || !EqualityComparer<TValue>.Default.Equals(kv.Value, v))
            {
                return false;
            }
        }
        return true;
    }
}
