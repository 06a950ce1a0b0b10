using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;

namespace Ambient.Ztunnel.State;

/// <summary>
/// The agent's view of the <see cref="MeshStore"/>: the live snapshot, which workloads are local to this node, and
/// the swap notifications. The store merges the sources (config file, manifests, Kubernetes, the CNI's pods); a
/// connection that read <see cref="Current"/> keeps one consistent view.
/// </summary>
internal sealed class MeshState
{
    public MeshState(MeshStore store, string nodeName)
    {
        Store = store;
        NodeName = nodeName;
    }

    public MeshStore Store { get; }

    /// <summary>This agent's node; empty means every workload is local.</summary>
    public string NodeName { get; }

    public MeshSnapshot Current => Store.Current;

    public event Action<MeshSnapshot, MeshSnapshot>? Changed
    {
        add => Store.Changed += value;
        remove => Store.Changed -= value;
    }

    public bool IsLocal(Workload w) => NodeName.Length == 0 || w.Node == NodeName;
}
