using System.Collections.Immutable;

namespace Ambient.Mesh.Model;

/// <summary>Istio AuthorizationPolicy actions (security.istio.io AuthorizationPolicy.Action).</summary>
public enum AuthorizationAction
{
    Allow,
    Deny,
    /// <summary>Only marks matching requests for audit logging; never allows or denies.</summary>
    Audit,
    /// <summary>Delegates the decision to an external authorizer (<see cref="IstioAuthorizationPolicy.Provider"/>).</summary>
    Custom,
}

/// <summary>
/// A policy's target (<c>targetRef</c>/<c>targetRefs</c>): a waypoint Gateway, a Service, a ServiceEntry or a
/// GatewayClass. A policy with targets is enforced by the waypoint, not by ztunnel.
/// </summary>
public sealed record IstioTargetRef(string Group, string Kind, string Name, string Namespace);

/// <summary>
/// <c>rules[].from[].source</c>: who sends. Values are kept as written (Istio's "*" globs: exact, "prefix*",
/// "*suffix", "*"); a field left out places no constraint; values of one field are OR'd, fields AND'd.
/// </summary>
public sealed record IstioAuthorizationSource
{
    /// <summary>Peer identities without "spiffe://" ("cluster.local/ns/shop/sa/web").</summary>
    public ImmutableArray<string> Principals { get; init; } = [];
    public ImmutableArray<string> NotPrincipals { get; init; } = [];
    /// <summary>JWT "iss/sub" (L7: only a waypoint can check it).</summary>
    public ImmutableArray<string> RequestPrincipals { get; init; } = [];
    public ImmutableArray<string> NotRequestPrincipals { get; init; } = [];
    public ImmutableArray<string> Namespaces { get; init; } = [];
    public ImmutableArray<string> NotNamespaces { get; init; } = [];
    /// <summary>"ns/sa", or "sa" in the policy's namespace.</summary>
    public ImmutableArray<string> ServiceAccounts { get; init; } = [];
    public ImmutableArray<string> NotServiceAccounts { get; init; } = [];
    /// <summary>The connection's source address.</summary>
    public ImmutableArray<IpNet> IpBlocks { get; init; } = [];
    public ImmutableArray<IpNet> NotIpBlocks { get; init; } = [];
    /// <summary>The original client address from X-Forwarded-For (L7).</summary>
    public ImmutableArray<IpNet> RemoteIpBlocks { get; init; } = [];
    public ImmutableArray<IpNet> NotRemoteIpBlocks { get; init; } = [];

    /// <summary>The fields only an HTTP-aware proxy can check, by their Istio names.</summary>
    public IEnumerable<string> L7Fields()
    {
        if (!RequestPrincipals.IsDefaultOrEmpty) { yield return "requestPrincipals"; }
        if (!NotRequestPrincipals.IsDefaultOrEmpty) { yield return "notRequestPrincipals"; }
        if (!RemoteIpBlocks.IsDefaultOrEmpty) { yield return "remoteIpBlocks"; }
        if (!NotRemoteIpBlocks.IsDefaultOrEmpty) { yield return "notRemoteIpBlocks"; }
    }
}

/// <summary><c>rules[].to[].operation</c>: what is asked for.</summary>
public sealed record IstioAuthorizationOperation
{
    /// <summary>HTTP Host / :authority (L7).</summary>
    public ImmutableArray<string> Hosts { get; init; } = [];
    public ImmutableArray<string> NotHosts { get; init; } = [];
    /// <summary>Destination ports (the workload's port, after service port translation).</summary>
    public ImmutableArray<int> Ports { get; init; } = [];
    public ImmutableArray<int> NotPorts { get; init; } = [];
    /// <summary>HTTP methods, or gRPC "Service/Method" names (L7).</summary>
    public ImmutableArray<string> Methods { get; init; } = [];
    public ImmutableArray<string> NotMethods { get; init; } = [];
    /// <summary>HTTP paths with Istio's globs (L7).</summary>
    public ImmutableArray<string> Paths { get; init; } = [];
    public ImmutableArray<string> NotPaths { get; init; } = [];

    public IEnumerable<string> L7Fields()
    {
        if (!Hosts.IsDefaultOrEmpty) { yield return "hosts"; }
        if (!NotHosts.IsDefaultOrEmpty) { yield return "notHosts"; }
        if (!Methods.IsDefaultOrEmpty) { yield return "methods"; }
        if (!NotMethods.IsDefaultOrEmpty) { yield return "notMethods"; }
        if (!Paths.IsDefaultOrEmpty) { yield return "paths"; }
        if (!NotPaths.IsDefaultOrEmpty) { yield return "notPaths"; }
    }
}

/// <summary><c>rules[].when[]</c>: a condition on an attribute ("source.ip", "request.headers[x-user]", ...).</summary>
public sealed record IstioAuthorizationCondition(string Key, ImmutableArray<string> Values, ImmutableArray<string> NotValues)
{
    /// <summary>The keys ztunnel can check (Istio's l4WhenAttributes); every other key needs a waypoint.</summary>
    public static readonly ImmutableHashSet<string> L4Keys =
        ["source.ip", "source.namespace", "source.principal", "destination.ip", "destination.port"];

    public bool IsL4 => L4Keys.Contains(Key);
}

/// <summary>One rule: every listed part must match (from AND to AND when); within a part, any entry (OR).</summary>
public sealed record IstioAuthorizationRule
{
    public ImmutableArray<IstioAuthorizationSource> From { get; init; } = [];
    public ImmutableArray<IstioAuthorizationOperation> To { get; init; } = [];
    public ImmutableArray<IstioAuthorizationCondition> When { get; init; } = [];
}

/// <summary>
/// An Istio <c>security.istio.io</c> AuthorizationPolicy with its full field set, as the waypoint enforces it.
/// ztunnel enforces the L4 translation of the same object (<see cref="AuthorizationPolicy"/>), which the
/// Kubernetes translator emits alongside this record when the policy is for ztunnel.
/// </summary>
public sealed record IstioAuthorizationPolicy : MeshObject
{
    public override string Kind => "AuthorizationPolicy";

    /// <summary><c>selector.matchLabels</c>; null when the policy has no selector (namespace-wide, or mesh-wide in the root namespace).</summary>
    public ImmutableDictionary<string, string>? Selector { get; init; }

    /// <summary><c>targetRef</c> and <c>targetRefs</c> together; a policy with targets is for waypoints (and gateways).</summary>
    public ImmutableArray<IstioTargetRef> TargetRefs { get; init; } = [];

    public AuthorizationAction Action { get; init; } = AuthorizationAction.Allow;

    /// <summary><c>provider.name</c> of a CUSTOM policy (an extension provider in the mesh config).</summary>
    public string? Provider { get; init; }

    /// <summary>Rules are OR'd. An ALLOW with none allows nothing; a rule with no parts matches everything.</summary>
    public ImmutableArray<IstioAuthorizationRule> Rules { get; init; } = [];

    /// <summary>The <c>istio.io/dry-run</c> annotation: evaluate and log, never enforce.</summary>
    public bool DryRun { get; init; }
}
