using System.Collections.Immutable;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;

namespace Ambient.Mesh.Kubernetes;

/// <summary>
/// The previous run's output, so that a resource that did not change keeps its instance: a store can then find
/// what changed among 10,000 workloads by reference (<see cref="object.ReferenceEquals"/>) before comparing values.
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

    // The model compares collections by content (ValueEquality): Workload, Service and Waypoint override Equals.
    // StableOutputTests changes every settable property of Workload and Service in turn and fails when a change
    // would go unnoticed, so a field added to the model without its comparison cannot hide a change here.

    private static bool SameWorkload(Workload a, Workload b) => a.Equals(b);

    private static bool SameService(Service a, Service b) => a.Equals(b);

    /// <summary>Parsed-once objects are the same instance already; waypoints are rebuilt each run and compared by value.</summary>
    private static bool SameObject(MeshObject a, MeshObject b) => a.Equals(b);
}
