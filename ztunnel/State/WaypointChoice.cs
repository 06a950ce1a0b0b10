using Ambient.Mesh.Model;
using Ambient.Mesh.State;

namespace Ambient.Ztunnel.State;

/// <summary>
/// Which workload is the waypoint a service or workload names: one rule for both ends of a connection, since the
/// client's agent sends through it (<see cref="Resolver"/>) and the destination's agent accepts mesh traffic only from it
/// (<see cref="Proxy.Inbound"/>); two rules would let them disagree. An address names the workload with that address on
/// the gateway's network; a hostname names the waypoint's service, whose first healthy endpoint with an address (in
/// the snapshot's order) is the waypoint.
/// </summary>
internal static class WaypointChoice
{
    public static Workload? Find(MeshSnapshot snapshot, GatewayAddress gateway)
    {
        if (gateway.Address is { } address)
        {
            return snapshot.FindWorkloadByIp(address, gateway.Network);
        }
        if (gateway.Hostname is { } host && snapshot.FindService($"{gateway.Namespace}/{host}") is { } service)
        {
            var endpoints = snapshot.EndpointsOf(service);
            for (int i = 0; i < endpoints.Count; i++)
            {
                if (endpoints[i].Status == HealthStatus.Healthy && !endpoints[i].WorkloadIps.IsDefaultOrEmpty)
                {
                    return endpoints[i];
                }
            }
        }
        return null;
    }
}
