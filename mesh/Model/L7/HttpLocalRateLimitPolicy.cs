using System.Collections.Immutable;

namespace Ambient.Mesh.Model.L7;

/// <summary>
/// Linkerd's policy.linkerd.io/v1alpha1 HTTPLocalRateLimitPolicy: token-bucket limits on requests to one target,
/// enforced by each proxy on its own (a waypoint with N replicas admits up to N times the rate). Besides
/// Linkerd's Server, the target may be a Service (what a waypoint serves).
/// </summary>
public sealed record HttpLocalRateLimitPolicy : MeshObject
{
    public override string Kind => "HTTPLocalRateLimitPolicy";

    public required RateLimitTarget TargetRef { get; init; }

    /// <summary>Requests per second for all clients together; null = no overall limit.</summary>
    public uint? TotalRequestsPerSecond { get; init; }

    /// <summary>Requests per second for each client identity separately (fairness); null = none.</summary>
    public uint? IdentityRequestsPerSecond { get; init; }

    /// <summary>Per-client limits that replace <see cref="IdentityRequestsPerSecond"/> for the clients they name.</summary>
    public ImmutableArray<RateLimitOverride> Overrides { get; init; } = [];

    /// <summary>
    /// The limit for one client's own bucket (ServiceAccount <paramref name="serviceAccount"/> in
    /// <paramref name="clientNamespace"/>): the first override naming it, else the per-identity limit, else null.
    /// The overall limit applies on top, to everyone.
    /// </summary>
    public uint? PerClientLimit(string clientNamespace, string serviceAccount)
    {
        foreach (RateLimitOverride o in Overrides)
        {
            foreach (RateLimitClientRef c in o.ClientRefs)
            {
                if (c.Name == serviceAccount && (c.Namespace ?? Namespace) == clientNamespace)
                {
                    return o.RequestsPerSecond;
                }
            }
        }
        return IdentityRequestsPerSecond;
    }
}

/// <summary>What the policy limits: a Service (group "", kind Service) or a Linkerd Server, in the policy's namespace.</summary>
public sealed record RateLimitTarget(string Group, string Kind, string Name)
{
    public bool IsService => Group.Length == 0 && Kind == "Service";

    public bool IsServer => Group == "policy.linkerd.io" && Kind == "Server";
}

public sealed record RateLimitOverride(uint RequestsPerSecond, ImmutableArray<RateLimitClientRef> ClientRefs);

/// <summary>A client ServiceAccount; a null namespace means the policy's namespace.</summary>
public sealed record RateLimitClientRef(string Name, string? Namespace);
