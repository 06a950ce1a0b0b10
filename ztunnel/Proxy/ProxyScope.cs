using Ambient.Mesh.Hbone;
using Ambient.Mesh.Model;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// Where a listener lives. Shared mode: the agent's own namespace, workloads found by address. In-pod mode: one
/// pod's network namespace, so the pod is known and upstream sockets must be made inside that namespace.
/// </summary>
internal sealed record ProxyScope(string? PodUid, SocketFactory? Sockets, string Name)
{
    public static readonly ProxyScope Shared = new(null, null, "shared");

    /// <summary>The pod this listener serves, as the current snapshot describes it (null in shared mode).</summary>
    public Workload? Pod(Mesh.State.MeshSnapshot snapshot) => PodUid is null ? null : snapshot.FindWorkloadByUid(PodUid);
}
