using System.Net;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Model;

namespace Ambient.Waypoint.Hbone;

/// <summary>
/// What the HBONE CONNECT told us about one tunnel, handed to every HTTP request Kestrel parses from it (a connection
/// feature): the authenticated peer, the client's address (the CONNECT's <c>forwarded</c> header when it names the
/// peer's own host), the address the client dialled (<c>:authority</c>) and what the mesh knows behind it.
/// </summary>
/// <param name="Peer">The client certificate's SPIFFE id: the source identity of every request in the tunnel.</param>
/// <param name="Client">The original client address.</param>
/// <param name="Authority">The CONNECT <c>:authority</c>: a service VIP:port, or a workload ip:port.</param>
/// <param name="Service">The service addressed by VIP, when it is one.</param>
/// <param name="Workload">The workload addressed directly, when the authority is a pod address.</param>
/// <param name="SourceWorkload">The client workload, when the mesh knows its address.</param>
internal sealed record TunnelInfo(
    SpiffeId Peer,
    IPEndPoint Client,
    IPEndPoint Authority,
    Service? Service,
    Workload? Workload,
    Workload? SourceWorkload);
