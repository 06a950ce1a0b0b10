using System.Collections.Immutable;
using System.Net;

namespace Ambient.Mesh.Model;

/// <summary>A service VIP on a network ("network/ip" in config; an empty network is the default network).</summary>
public sealed record NetworkAddress(string Network, IPAddress Address)
{
    public override string ToString() => $"{Network}/{Address}";
}

public enum LoadBalancingMode
{
    /// <summary>Istio's "Standard": scopes are not considered.</summary>
    Unspecified,
    Strict,
    Failover,
    /// <summary>No endpoint choice: traffic goes to the original destination address.</summary>
    Passthrough,
}

/// <summary>Which endpoints a service may pick (Istio LoadBalancing.HealthPolicy).</summary>
public enum LoadBalancingHealthPolicy
{
    OnlyHealthy,
    AllowAll,
}

public enum LoadBalancingScope
{
    Network,
    Region,
    Zone,
    Subzone,
    Node,
    Cluster,
}

public sealed record LoadBalancing(ImmutableArray<LoadBalancingScope> RoutingPreference, LoadBalancingMode Mode)
{
    public LoadBalancingHealthPolicy HealthPolicy { get; init; } = LoadBalancingHealthPolicy.OnlyHealthy;

    public bool Equals(LoadBalancing? other) => other is not null && Mode == other.Mode && HealthPolicy == other.HealthPolicy
        && ValueEquality.Same(RoutingPreference, other.RoutingPreference);

    public override int GetHashCode() => HashCode.Combine(Mode, HealthPolicy);
}

/// <summary>A service, as Istio's workload.proto Service message and the local config describe it.</summary>
public sealed record Service
{
    public required string Name { get; init; }
    public required string Namespace { get; init; }
    public required string Hostname { get; init; }
    public ImmutableArray<NetworkAddress> Vips { get; init; } = [];
    /// <summary>Service port -> target port (0 = same as service port, or resolved per workload).</summary>
    public ImmutableDictionary<int, int> Ports { get; init; } = ImmutableDictionary<int, int>.Empty;
    /// <summary>
    /// Service port -> the protocol it declares, lower case: the port's <c>appProtocol</c> when set, else its name
    /// (Istio reads the name as <c>protocol[-suffix]</c>), else a ServiceEntry port's <c>protocol</c>. A port that
    /// declares nothing is absent. Waypoints proxy a port as HTTP or as TCP by it.
    /// </summary>
    public ImmutableDictionary<int, string> PortProtocols { get; init; } = ImmutableDictionary<int, string>.Empty;
    public ImmutableArray<string> SubjectAltNames { get; init; } = [];
    public GatewayAddress? Waypoint { get; init; }
    public LoadBalancing? LoadBalancing { get; init; }

    public bool Equals(Service? other) => other is not null && (ReferenceEquals(this, other) || (
        Name == other.Name && Namespace == other.Namespace && Hostname == other.Hostname && ValueEquality.Same(Vips, other.Vips)
        && ValueEquality.Same(Ports, other.Ports) && ValueEquality.Same(PortProtocols, other.PortProtocols) && ValueEquality.Same(SubjectAltNames, other.SubjectAltNames)
        && Equals(Waypoint, other.Waypoint) && Equals(LoadBalancing, other.LoadBalancing)));

    public override int GetHashCode() => HashCode.Combine(Name, Namespace, Hostname);

    /// <summary>The key workloads use to refer to this service: "namespace/hostname".</summary>
    public string Key => $"{Namespace}/{Hostname}";
}
