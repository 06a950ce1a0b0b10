using System.Collections.Immutable;
using System.Net;

namespace Ambient.Mesh.Model;

public enum PolicyScope
{
    /// <summary>Applies to every workload in the mesh (Istio: policies in the root namespace).</summary>
    Global,
    /// <summary>Applies to every workload in the policy's namespace.</summary>
    Namespace,
    /// <summary>Applies to workloads that list this policy in <see cref="Workload.AuthorizationPolicies"/>.</summary>
    WorkloadSelector,
}

public enum PolicyAction
{
    Allow,
    Deny,
}

public enum StringMatchKind
{
    Exact,
    Prefix,
    Suffix,
    /// <summary>Matches any non-empty value.</summary>
    Presence,
}

public readonly record struct StringMatch(StringMatchKind Kind, string Value)
{
    public bool Matches(string? candidate) => Kind switch
    {
        StringMatchKind.Exact => string.Equals(candidate, Value, StringComparison.Ordinal),
        StringMatchKind.Prefix => candidate is not null && candidate.StartsWith(Value, StringComparison.Ordinal),
        StringMatchKind.Suffix => candidate is not null && candidate.EndsWith(Value, StringComparison.Ordinal),
        StringMatchKind.Presence => !string.IsNullOrEmpty(candidate),
        _ => false,
    };
}

/// <summary>An IP network in CIDR form (a bare address is a /32 or /128).</summary>
public readonly record struct IpNet(IPAddress Network, int PrefixLength)
{
    public bool Contains(IPAddress address)
    {
        // Allocation-free (policy checks run per connection): compare raw bytes; an IPv4-mapped IPv6
        // address is compared by its last four bytes instead of allocating MapToIPv4().
        Span<byte> a = stackalloc byte[16];
        Span<byte> n = stackalloc byte[16];
        if (!address.TryWriteBytes(a, out int len) || !Network.TryWriteBytes(n, out int netLen))
        {
            return false;
        }
        ReadOnlySpan<byte> addr = a[..len];
        if (len == 16 && address.IsIPv4MappedToIPv6)
        {
            addr = a.Slice(12, 4);
        }
        if (addr.Length != netLen)
        {
            return false;
        }
        int full = Math.Min(PrefixLength / 8, netLen);
        if (!addr[..full].SequenceEqual(n[..full]))
        {
            return false;
        }
        int rem = PrefixLength % 8;
        if (rem == 0 || full >= netLen)
        {
            return true;
        }
        int mask = 0xFF << (8 - rem) & 0xFF;
        return (addr[full] & mask) == (n[full] & mask);
    }

    public override string ToString() => $"{Network}/{PrefixLength}";
}

/// <summary>
/// Istio's newer form of a service-account match (ztunnel <c>ServiceAccountMatch</c>): both the source's
/// namespace and its service account must equal these.
/// </summary>
public readonly record struct ServiceAccountMatch(string Namespace, string ServiceAccount);

/// <summary>
/// One match: values of a field are OR'd, different fields are AND'd; a <c>not*</c> field excludes.
/// An empty field places no constraint.
/// </summary>
public sealed record PolicyMatch
{
    public ImmutableArray<StringMatch> Namespaces { get; init; } = [];
    public ImmutableArray<StringMatch> NotNamespaces { get; init; } = [];
    public ImmutableArray<StringMatch> ServiceAccounts { get; init; } = [];
    public ImmutableArray<StringMatch> NotServiceAccounts { get; init; } = [];
    /// <summary>Same field as <see cref="ServiceAccounts"/> (values OR'd together), in Istio's <c>{namespace, serviceAccount}</c> form.</summary>
    public ImmutableArray<ServiceAccountMatch> NamespacedServiceAccounts { get; init; } = [];
    public ImmutableArray<ServiceAccountMatch> NotNamespacedServiceAccounts { get; init; } = [];
    public ImmutableArray<StringMatch> Principals { get; init; } = [];
    public ImmutableArray<StringMatch> NotPrincipals { get; init; } = [];
    public ImmutableArray<IpNet> SourceIps { get; init; } = [];
    public ImmutableArray<IpNet> NotSourceIps { get; init; } = [];
    public ImmutableArray<IpNet> DestinationIps { get; init; } = [];
    public ImmutableArray<IpNet> NotDestinationIps { get; init; } = [];
    public ImmutableArray<int> DestinationPorts { get; init; } = [];
    public ImmutableArray<int> NotDestinationPorts { get; init; } = [];
}

/// <summary>A list of matches, any of which may match (OR).</summary>
public sealed record PolicyClause(ImmutableArray<PolicyMatch> Matches);

/// <summary>A list of clauses, all of which must match (AND).</summary>
public sealed record PolicyRule(ImmutableArray<PolicyClause> Clauses);

/// <summary>An L4 authorization policy, as ztunnel's local config carries it.</summary>
public sealed record AuthorizationPolicy
{
    public required string Name { get; init; }
    public required string Namespace { get; init; }
    public PolicyScope Scope { get; init; } = PolicyScope.Namespace;
    public PolicyAction Action { get; init; } = PolicyAction.Allow;
    public bool DryRun { get; init; }
    /// <summary>Rules are OR'd.</summary>
    public ImmutableArray<PolicyRule> Rules { get; init; } = [];

    public string Key => $"{Namespace}/{Name}";
}
