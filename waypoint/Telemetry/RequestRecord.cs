using Ambient.Mesh.Model;
using Ambient.Waypoint.Hbone;

namespace Ambient.Waypoint.Telemetry;

/// <summary>
/// What one request did, filled in as it passes routing, authorization and forwarding, then reported once as
/// Istio's L7 metrics and one access log line.
/// </summary>
internal sealed class RequestRecord(TunnelInfo tunnel, long startTicks)
{
    public TunnelInfo Tunnel { get; } = tunnel;
    public long StartTicks { get; } = startTicks;
    public string Method { get; set; } = "";
    public string Path { get; set; } = "";
    public string Authority { get; set; } = "";
    public string Protocol { get; set; } = "HTTP/1.1";
    public bool Grpc { get; set; }
    public Service? DestinationService { get; set; }
    public Workload? DestinationWorkload { get; set; }
    public string? Upstream { get; set; }
    /// <summary>Istio's name for the upstream cluster (<c>inbound-vip|port|http/subset|host</c>), for traces.</summary>
    public string? UpstreamCluster { get; set; }
    /// <summary>Envoy's response flags ("-" when none): NR, DENY, UH, UF, UT, UC, UR, DC...</summary>
    public string ResponseFlags { get; set; } = "-";
    /// <summary>The route that matched ("HTTPRoute/ns/name#rule"), or null.</summary>
    public string? Route { get; set; }
    /// <summary>Why a request was refused or failed, for the access log.</summary>
    public string? Detail { get; set; }
    public long RequestBytes { get; set; }
    public long ResponseBytes { get; set; }
    public int Status { get; set; }
    public string? GrpcStatus { get; set; }
}
