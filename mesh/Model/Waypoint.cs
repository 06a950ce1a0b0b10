using System.Collections.Immutable;
using System.Net;

namespace Ambient.Mesh.Model;

/// <summary>Which traffic a waypoint takes (the Gateway's <c>istio.io/waypoint-for</c> label).</summary>
public enum WaypointTraffic
{
    /// <summary>Traffic addressed to services that use the waypoint (Istio's default).</summary>
    Service,
    /// <summary>Traffic addressed to workloads (pod IPs) that use the waypoint.</summary>
    Workload,
    All,
    None,
}

/// <summary>Which namespaces may use a waypoint (a listener's <c>allowedRoutes.namespaces.from</c>).</summary>
public enum WaypointNamespaces
{
    /// <summary>Only the waypoint's own namespace (the Gateway API default).</summary>
    Same,
    All,
    /// <summary>Namespaces whose labels match <see cref="WaypointListener.NamespaceSelector"/>.</summary>
    Selector,
}

/// <summary>One Gateway listener of a waypoint: Istio's is <c>{name: mesh, port: 15008, protocol: HBONE}</c>.</summary>
public sealed record WaypointListener(string Name, int Port, string Protocol);

/// <summary>
/// A waypoint: a Gateway API <c>Gateway</c> with <c>gatewayClassName: istio-waypoint</c>. Its workloads are the pods
/// labelled <c>gateway.networking.k8s.io/gateway-name: &lt;name&gt;</c>; ztunnel reaches it through its Service
/// (<see cref="ServiceHostname"/>) and expects the identity <see cref="Identity"/>.
/// </summary>
public sealed record Waypoint : MeshObject
{
    public override string Kind => "Gateway";

    public string GatewayClassName { get; init; } = "istio-waypoint";

    public WaypointTraffic For { get; init; } = WaypointTraffic.Service;

    public ImmutableArray<WaypointListener> Listeners { get; init; } = [];

    /// <summary>The waypoint's SPIFFE id, <c>spiffe://&lt;td&gt;/ns/&lt;ns&gt;/sa/&lt;gateway name&gt;</c>.</summary>
    public required string Identity { get; init; }

    /// <summary>Its Service, <c>&lt;name&gt;.&lt;ns&gt;.svc.&lt;domain suffix&gt;</c>.</summary>
    public required string ServiceHostname { get; init; }

    /// <summary>
    /// Which namespaces may use it: <c>allowedRoutes.namespaces</c> of its HBONE listener on 15008 (Istio reads that
    /// listener only); <see cref="WaypointNamespaces.Same"/> without one.
    /// </summary>
    public WaypointNamespaces AllowedNamespaces { get; init; } = WaypointNamespaces.Same;

    /// <summary><c>allowedRoutes.namespaces.selector.matchLabels</c> when <see cref="AllowedNamespaces"/> is Selector.</summary>
    public ImmutableDictionary<string, string> NamespaceSelector { get; init; } = ImmutableDictionary<string, string>.Empty;

    /// <summary>IP addresses from the Gateway's spec.addresses or status.addresses (the VIP of its Service when known).</summary>
    public ImmutableArray<IPAddress> Addresses { get; init; } = [];

    public bool IsFor(WaypointTraffic traffic) => For == WaypointTraffic.All ? traffic != WaypointTraffic.None : For == traffic;

    /// <summary>Whether objects of <paramref name="ns"/> (with <paramref name="namespaceLabels"/>) may use this waypoint.</summary>
    public bool AllowsNamespace(string ns, ImmutableDictionary<string, string> namespaceLabels)
    {
        switch (AllowedNamespaces)
        {
            case WaypointNamespaces.All:
                return true;
            case WaypointNamespaces.Selector:
                foreach (KeyValuePair<string, string> kv in NamespaceSelector)
                {
                    if (!namespaceLabels.TryGetValue(kv.Key, out string? v) || v != kv.Value)
                    {
                        return false;
                    }
                }
                return true;
            default:
                return ns == Namespace;
        }
    }
}
