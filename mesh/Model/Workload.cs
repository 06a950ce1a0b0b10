using System.Collections.Immutable;
using System.Net;

namespace Ambient.Mesh.Model;

/// <summary>How a workload accepts mesh traffic (Istio workload.proto InboundProtocol).</summary>
public enum InboundProtocol
{
    /// <summary>Plain TCP: the workload is not in the mesh (or not captured); send bytes as they are.</summary>
    Tcp,
    /// <summary>HTTP/2 CONNECT over mTLS to port 15008 of the workload.</summary>
    Hbone,
}

/// <summary>Istio workload.proto NetworkMode: host-network workloads share the node's IP, so they are not indexed by address.</summary>
public enum NetworkMode
{
    Standard,
    HostNetwork,
}

public enum HealthStatus
{
    Healthy,
    Unhealthy,
}

public sealed record Locality(string Region = "", string Zone = "", string Subzone = "");

/// <summary>A waypoint reference: either a service hostname ("ns/host") or an address ("network/ip").</summary>
public sealed record GatewayAddress(string? Hostname, string? Namespace, IPAddress? Address, string Network, int HboneMtlsPort = 15008);

/// <summary>
/// One workload (pod or VM), as Istio's workload.proto and ztunnel's local config describe it.
/// Immutable: a config change builds a new snapshot.
/// </summary>
public sealed record Workload
{
    public required string Uid { get; init; }
    public required string Name { get; init; }
    public required string Namespace { get; init; }
    public string ServiceAccount { get; init; } = "default";
    public string TrustDomain { get; init; } = "";
    public ImmutableArray<IPAddress> WorkloadIps { get; init; } = [];
    public InboundProtocol Protocol { get; init; } = InboundProtocol.Tcp;
    public NetworkMode NetworkMode { get; init; } = NetworkMode.Standard;
    public string Node { get; init; } = "";
    public string Network { get; init; } = "";
    public string ClusterId { get; init; } = "";
    public string WorkloadName { get; init; } = "";
    public string WorkloadType { get; init; } = "pod";
    public string CanonicalName { get; init; } = "";
    public string CanonicalRevision { get; init; } = "";
    public string Hostname { get; init; } = "";
    public HealthStatus Status { get; init; } = HealthStatus.Healthy;
    public int Capacity { get; init; } = 1;
    public Locality Locality { get; init; } = new();
    public GatewayAddress? Waypoint { get; init; }
    /// <summary>Policy keys "namespace/name" of WorkloadSelector-scoped policies that select this workload.</summary>
    public ImmutableArray<string> AuthorizationPolicies { get; init; } = [];
    /// <summary>Service key "namespace/hostname" -> (service port -> target port). A target port 0 means "same as service port".</summary>
    public ImmutableDictionary<string, ImmutableDictionary<int, int>> Services { get; init; } =
        ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty;
    /// <summary>Labels (used for enrollment and by the Kubernetes source); empty in most local configs.</summary>
    public ImmutableDictionary<string, string> Labels { get; init; } = ImmutableDictionary<string, string>.Empty;

    public bool Equals(Workload? other) => other is not null && (ReferenceEquals(this, other) || (
        Uid == other.Uid && Name == other.Name && Namespace == other.Namespace && ServiceAccount == other.ServiceAccount
        && TrustDomain == other.TrustDomain && ValueEquality.Same(WorkloadIps, other.WorkloadIps) && Protocol == other.Protocol
        && NetworkMode == other.NetworkMode && Node == other.Node && Network == other.Network && ClusterId == other.ClusterId
        && WorkloadName == other.WorkloadName && WorkloadType == other.WorkloadType && CanonicalName == other.CanonicalName
        && CanonicalRevision == other.CanonicalRevision && Hostname == other.Hostname && Status == other.Status
        && Capacity == other.Capacity && Equals(Locality, other.Locality) && Equals(Waypoint, other.Waypoint)
        && ValueEquality.Same(AuthorizationPolicies, other.AuthorizationPolicies) && ValueEquality.Same(Services, other.Services)
        && ValueEquality.Same(Labels, other.Labels)));

    public override int GetHashCode() => HashCode.Combine(Uid, Name, Namespace);

    /// <summary>The effective trust domain: the workload's own, or the mesh default.</summary>
    public string EffectiveTrustDomain(string meshTrustDomain) => TrustDomain.Length > 0 ? TrustDomain : meshTrustDomain;

    /// <summary>SPIFFE id string <c>spiffe://td/ns/N/sa/SA</c>.</summary>
    public string SpiffeId(string meshTrustDomain) =>
        $"spiffe://{EffectiveTrustDomain(meshTrustDomain)}/ns/{Namespace}/sa/{ServiceAccount}";
}
