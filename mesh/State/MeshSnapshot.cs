using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.State;

/// <summary>
/// An indexed, immutable view of one config: the agent swaps the whole snapshot on change, so one
/// connection sees one consistent config.
/// </summary>
public sealed class MeshSnapshot
{
    public static MeshSnapshot Build(MeshConfig config, long version) => throw new NotImplementedException();

    public MeshConfig Config => throw new NotImplementedException();
    public long Version => throw new NotImplementedException();

    public Workload? FindWorkloadByIp(IPAddress ip, string network = "") => throw new NotImplementedException();
    public Workload? FindWorkloadByUid(string uid) => throw new NotImplementedException();
    public Workload? FindWorkload(string ns, string name) => throw new NotImplementedException();
    public Service? FindServiceByVip(IPAddress ip, string network = "") => throw new NotImplementedException();
    public Service? FindService(string key) => throw new NotImplementedException();
    /// <summary>Workloads that list this service (ports mapped per workload).</summary>
    public IReadOnlyList<Workload> EndpointsOf(Service service) => throw new NotImplementedException();
    public IReadOnlyList<Workload> WorkloadsOnNode(string node) => throw new NotImplementedException();
    /// <summary>Policies that apply to a destination workload: Global, its Namespace, and its WorkloadSelector ones.</summary>
    public IReadOnlyList<AuthorizationPolicy> PoliciesFor(Workload destination) => throw new NotImplementedException();
}
