using System.Net;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Model;
using Ambient.Mesh.State;

namespace Ambient.Waypoint.Hbone;

/// <summary>
/// Who this waypoint is: the Gateway it serves (<c>--gateway NS/NAME</c>), its identity
/// <c>spiffe://&lt;td&gt;/ns/&lt;ns&gt;/sa/&lt;gateway name&gt;</c> (Istio's), and the address it listens on.
/// </summary>
internal sealed record WaypointIdentity(string Namespace, string Name, string TrustDomain, IPAddress Address)
{
    public SpiffeId Id { get; } = new(TrustDomain, Namespace, Name);

    /// <summary>The Gateway's own record when the mesh has it (its Service hostname may use another domain suffix).</summary>
    public Mesh.Model.Waypoint? Gateway(MeshSnapshot snapshot) => snapshot.FindObject($"Gateway/{Namespace}/{Name}") as Mesh.Model.Waypoint;

    /// <summary>Whether a service's or workload's waypoint reference names this waypoint.</summary>
    public bool IsMe(MeshSnapshot snapshot, GatewayAddress? gateway)
    {
        if (gateway is null)
        {
            return false;
        }
        if (gateway.Hostname is { } host)
        {
            string mine = Gateway(snapshot)?.ServiceHostname ?? $"{Name}.{Namespace}.svc.cluster.local";
            return host == mine && (gateway.Namespace is null || gateway.Namespace == Namespace);
        }
        if (gateway.Address is { } address)
        {
            if (address.Equals(Address))
            {
                return true;
            }
            var w = snapshot.FindWorkloadByIp(address, gateway.Network);
            return w is not null && w.SpiffeId(TrustDomain) == Id.ToString();
        }
        return false;
    }

    /// <summary>The waypoint's own workload (its pod), when the mesh knows its address.</summary>
    public Workload? Self(MeshSnapshot snapshot) => IPAddress.Any.Equals(Address) ? null : snapshot.FindWorkloadByIp(Address);
}
