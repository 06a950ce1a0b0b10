using System.Net;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Sources;
using Ambient.Waypoint.Telemetry;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Hbone;

/// <summary>The answer to one CONNECT: a tunnel to hand to Kestrel, or the HBONE status that refuses it.</summary>
internal readonly record struct Admission(TunnelInfo? Tunnel, int Status, string? Reason);

/// <summary>
/// Decides whether a CONNECT is for this waypoint. The <c>:authority</c> is what the client dialled: a service
/// VIP:port or a workload ip:port. An address the mesh does not know is answered 503 (nothing to route to); a known
/// destination that uses another waypoint (or none) is refused with 400, so this waypoint never applies its rules to
/// traffic that is not its own.
/// </summary>
internal sealed partial class TunnelAdmission(MeshStore store, WaypointIdentity identity, WaypointMetrics metrics, ILogger<TunnelAdmission> logger)
{
    public Admission Admit(HboneInboundRequest request)
    {
        var headers = request.Stream.RequestHeaders;
        if (HboneHeaders.Get(headers, ":method") != "CONNECT")
        {
            return Refuse(400, "bad_request", $"{request.PeerIdentity}: HBONE accepts only CONNECT");
        }
        string? authority = HboneHeaders.Get(headers, ":authority");
        if (!HboneHeaders.TryParseAuthority(authority, out var target))
        {
            return Refuse(400, "bad_request", $"{request.PeerIdentity}: :authority '{authority}' is not ip:port");
        }
        target = Normalize(target);
        var remote = Normalize(request.RemoteEndPoint);
        // forwarded: for="ip:port" names the original client when it came from the peer's own host (ztunnel's
        // outbound keeps the pod's address); otherwise the TCP peer is the client.
        var forwarded = HboneHeaders.ParseForwardedFor(HboneHeaders.Get(headers, HboneHeaders.Forwarded));
        var client = forwarded is not null ? Normalize(forwarded) : remote;
        var snapshot = store.Current;
        var source = snapshot.FindWorkloadByIp(client.Address) ?? snapshot.FindWorkloadByIp(remote.Address);

        var service = snapshot.FindServiceByVip(target.Address);
        if (service is not null)
        {
            if (!identity.IsMe(snapshot, service.Waypoint))
            {
                return Refuse(400, "not_served", $"{request.PeerIdentity} -> {target}: service {service.Hostname} is not served by waypoint {identity.Namespace}/{identity.Name}");
            }
            if (!service.Ports.ContainsKey(target.Port))
            {
                return Refuse(503, "unknown_port", $"{request.PeerIdentity} -> {target}: service {service.Hostname} has no port {target.Port}");
            }
            return new Admission(new TunnelInfo(request.PeerIdentity, client, target, service, null, source), 200, null);
        }
        var workload = snapshot.FindWorkloadByIp(target.Address);
        if (workload is not null)
        {
            var gateway = identity.Gateway(snapshot);
            if (!identity.IsMe(snapshot, workload.Waypoint) || gateway is not null && !gateway.IsFor(Mesh.Model.WaypointTraffic.Workload))
            {
                return Refuse(400, "not_served", $"{request.PeerIdentity} -> {target}: workload {workload.Namespace}/{workload.Name} is not served by waypoint {identity.Namespace}/{identity.Name}");
            }
            return new Admission(new TunnelInfo(request.PeerIdentity, client, target, null, workload, source), 200, null);
        }
        return Refuse(503, "unknown_destination", $"{request.PeerIdentity} -> {target}: no service or workload has address {target.Address}");
    }

    /// <summary>A connection refused before any request (TLS handshake, protocol).</summary>
    public void Refused(string reason, string detail)
    {
        metrics.Refused(reason);
        LogRefused(logger, reason, detail);
    }

    private Admission Refuse(int status, string reason, string detail)
    {
        Refused(reason, detail);
        return new Admission(null, status, detail);
    }

    private static IPEndPoint Normalize(IPEndPoint ep) =>
        ep.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(ep.Address.MapToIPv4(), ep.Port) : ep;

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "HBONE tunnel refused ({Reason}): {Detail}")]
    private static partial void LogRefused(ILogger logger, string reason, string detail);
}
