using System.Collections.Immutable;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.Sources;

/// <summary>
/// What one source knows of the mesh at one moment: the L4 kinds ztunnel's local config has plus every other
/// mesh object. A source publishes a whole <see cref="MeshResources"/> (state of the world) or a
/// <see cref="MeshDelta"/>; the store merges all sources by key.
/// </summary>
/// <remarks>
/// Keys: a workload by <see cref="Workload.Uid"/>, a service by <see cref="Service.Key"/> ("ns/hostname"), an L4
/// policy by <see cref="AuthorizationPolicy.Key"/> ("ns/name"), any other object by <see cref="MeshObject.Key"/>.
/// </remarks>
public sealed record MeshResources
{
    public static readonly MeshResources Empty = new();

    public ImmutableArray<Workload> Workloads { get; init; } = [];

    public ImmutableArray<Service> Services { get; init; } = [];

    public ImmutableArray<AuthorizationPolicy> Policies { get; init; } = [];

    public ImmutableArray<MeshObject> Objects { get; init; } = [];

    public int Count => Workloads.Length + Services.Length + Policies.Length + Objects.Length;
}

/// <summary>A change from one source: what is added or replaced, and the keys (see <see cref="MeshResources"/>) removed.</summary>
public sealed record MeshDelta
{
    public MeshResources Upserts { get; init; } = MeshResources.Empty;

    public ImmutableArray<string> RemovedWorkloads { get; init; } = [];

    public ImmutableArray<string> RemovedServices { get; init; } = [];

    public ImmutableArray<string> RemovedPolicies { get; init; } = [];

    public ImmutableArray<string> RemovedObjects { get; init; } = [];

    public bool IsEmpty => Upserts.Count == 0 && RemovedWorkloads.IsEmpty && RemovedServices.IsEmpty
        && RemovedPolicies.IsEmpty && RemovedObjects.IsEmpty;
}
