using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using Ambient.Mesh.State;

namespace Ambient.Mesh.Policy;

/// <summary>What L4 authorization knows about a connection.</summary>
/// <param name="SourcePrincipal">Peer identity without the scheme, e.g. <c>cluster.local/ns/a/sa/b</c>; null when unauthenticated (plaintext).</param>
/// <param name="SourceNamespace">The peer's namespace; null derives it from <paramref name="SourcePrincipal"/>. Ignored without a principal.</param>
/// <param name="SourceServiceAccount">The peer's service account; null derives it from <paramref name="SourcePrincipal"/>. Ignored without a principal.</param>
public readonly record struct ConnectionInfo(
    IPAddress SourceIp,
    IPAddress DestinationIp,
    int DestinationPort,
    string? SourcePrincipal,
    string? SourceNamespace,
    string? SourceServiceAccount);

/// <summary>The verdict and why: <see cref="PolicyKey"/> names the deciding policy ("ns/name") when one decided.</summary>
public readonly record struct AuthorizationDecision(bool Allowed, string? PolicyKey, string Reason, ImmutableArray<string> DryRunMatches)
{
    /// <summary>The reason with the deciding policy, for logs: "denied by a DENY policy (ns/name)".</summary>
    public string Describe() => PolicyKey is null ? Reason : $"{Reason} ({PolicyKey})";
}

/// <summary>Istio's L4 evaluation: any matching DENY denies; no ALLOW applying allows; a matching ALLOW allows; else deny.</summary>
/// <remarks>
/// Mirrors ztunnel's <c>assert_rbac</c> and <c>Authorization::matches</c> (src/state.rs, src/rbac.rs), including
/// its edge cases:
/// <list type="bullet">
/// <item>A policy with no rules matches nothing (an ALLOW with no rules is Istio's "allow-nothing").</item>
/// <item>A rule with no clauses, or a clause with no matches, matches everything.</item>
/// <item>An empty match (no field set) matches nothing.</item>
/// <item>Namespace, service account and principal come only from the authenticated peer identity. Without
/// one they are unknown: a positive field on them never matches and a <c>not*</c> field on them always
/// does. So an ALLOW on namespaces never admits plaintext, and a DENY with <c>notNamespaces</c> or
/// <c>notPrincipals</c> denies plaintext.</item>
/// <item>Dry-run policies never decide, and they do not count as "an ALLOW policy applies"; the ones
/// whose rules match are listed in <see cref="AuthorizationDecision.DryRunMatches"/>.</item>
/// </list>
/// Nothing here allocates unless a dry-run policy matches (hot path: one call per connection).
/// </remarks>
public static class Authorizer
{
    public const string ReasonDenied = "denied by a DENY policy";
    public const string ReasonNoAllowPolicies = "no ALLOW policy applies";
    public const string ReasonAllowed = "allowed by an ALLOW policy";
    public const string ReasonNotAllowed = "no ALLOW policy matched";

    public static AuthorizationDecision Evaluate(MeshSnapshot snapshot, Workload destination, in ConnectionInfo connection)
    {
        PolicySet set = snapshot.PolicySetFor(destination);
        var peer = new Peer(connection);
        ImmutableArray<string> dryRun = DryRunMatches(set, connection, peer);

        for (int i = 0; i < set.Deny.Length; i++)
        {
            if (Matches(set.Deny[i], connection, peer))
            {
                return new AuthorizationDecision(false, set.DenyKeys[i], ReasonDenied, dryRun);
            }
        }
        if (set.Allow.Length == 0)
        {
            return new AuthorizationDecision(true, null, ReasonNoAllowPolicies, dryRun);
        }
        for (int i = 0; i < set.Allow.Length; i++)
        {
            if (Matches(set.Allow[i], connection, peer))
            {
                return new AuthorizationDecision(true, set.AllowKeys[i], ReasonAllowed, dryRun);
            }
        }
        return new AuthorizationDecision(false, null, ReasonNotAllowed, dryRun);
    }

    private static ImmutableArray<string> DryRunMatches(PolicySet set, in ConnectionInfo c, in Peer peer)
    {
        if (set.DryRun.Length == 0)
        {
            return ImmutableArray<string>.Empty;
        }
        ImmutableArray<string>.Builder? matched = null;
        for (int i = 0; i < set.DryRun.Length; i++)
        {
            if (Matches(set.DryRun[i], c, peer))
            {
                matched ??= ImmutableArray.CreateBuilder<string>();
                matched.Add(set.DryRunKeys[i]);
            }
        }
        return matched is null ? ImmutableArray<string>.Empty : matched.ToImmutable();
    }

    /// <summary>Whether a policy's rules match the connection (its action aside).</summary>
    internal static bool Matches(AuthorizationPolicy policy, in ConnectionInfo c) => Matches(policy, c, new Peer(c));

    private static bool Matches(AuthorizationPolicy policy, in ConnectionInfo c, in Peer peer)
    {
        ImmutableArray<PolicyRule> rules = policy.Rules;
        for (int r = 0; r < rules.Length; r++)
        {
            if (RuleMatches(rules[r], c, peer))
            {
                return true; // rules are OR'd
            }
        }
        return false;
    }

    private static bool RuleMatches(PolicyRule rule, in ConnectionInfo c, in Peer peer)
    {
        ImmutableArray<PolicyClause> clauses = rule.Clauses;
        for (int i = 0; i < clauses.Length; i++)
        {
            if (!ClauseMatches(clauses[i], c, peer))
            {
                return false; // clauses are AND'd
            }
        }
        return true;
    }

    private static bool ClauseMatches(PolicyClause clause, in ConnectionInfo c, in Peer peer)
    {
        ImmutableArray<PolicyMatch> matches = clause.Matches;
        if (matches.IsDefaultOrEmpty)
        {
            return true;
        }
        for (int i = 0; i < matches.Length; i++)
        {
            if (MatchMatches(matches[i], c, peer))
            {
                return true; // matches are OR'd
            }
        }
        return false;
    }

    private static bool MatchMatches(PolicyMatch m, in ConnectionInfo c, in Peer peer)
    {
        if (IsEmpty(m))
        {
            return false;
        }
        return Field(m.DestinationIps, m.NotDestinationIps, c.DestinationIp)
            && Field(m.SourceIps, m.NotSourceIps, c.SourceIp)
            && Field(m.DestinationPorts, m.NotDestinationPorts, c.DestinationPort)
            && ServiceAccountField(m, peer)
            && StringField(m.Principals, m.NotPrincipals, peer.Principal, peer.Authenticated)
            && StringField(m.Namespaces, m.NotNamespaces, peer.Namespace, known: true);
    }

    private static bool IsEmpty(PolicyMatch m) =>
        m.Namespaces.IsDefaultOrEmpty && m.NotNamespaces.IsDefaultOrEmpty
        && m.ServiceAccounts.IsDefaultOrEmpty && m.NotServiceAccounts.IsDefaultOrEmpty
        && m.NamespacedServiceAccounts.IsDefaultOrEmpty && m.NotNamespacedServiceAccounts.IsDefaultOrEmpty
        && m.Principals.IsDefaultOrEmpty && m.NotPrincipals.IsDefaultOrEmpty
        && m.SourceIps.IsDefaultOrEmpty && m.NotSourceIps.IsDefaultOrEmpty
        && m.DestinationIps.IsDefaultOrEmpty && m.NotDestinationIps.IsDefaultOrEmpty
        && m.DestinationPorts.IsDefaultOrEmpty && m.NotDestinationPorts.IsDefaultOrEmpty;

    // One field: some positive value matches (or none is listed), and no negative value matches.

    private static bool Field(ImmutableArray<IpNet> positive, ImmutableArray<IpNet> negative, IPAddress ip)
    {
        if (!positive.IsDefaultOrEmpty && !AnyContains(positive, ip))
        {
            return false;
        }
        return negative.IsDefaultOrEmpty || !AnyContains(negative, ip);
    }

    private static bool AnyContains(ImmutableArray<IpNet> nets, IPAddress ip)
    {
        for (int i = 0; i < nets.Length; i++)
        {
            if (nets[i].Contains(ip))
            {
                return true;
            }
        }
        return false;
    }

    private static bool Field(ImmutableArray<int> positive, ImmutableArray<int> negative, int port)
    {
        if (!positive.IsDefaultOrEmpty && positive.IndexOf(port) < 0)
        {
            return false;
        }
        return negative.IsDefaultOrEmpty || negative.IndexOf(port) < 0;
    }

    private static bool StringField(ImmutableArray<StringMatch> positive, ImmutableArray<StringMatch> negative, ReadOnlySpan<char> value, bool known)
    {
        if (!positive.IsDefaultOrEmpty && !(known && AnyMatches(positive, value)))
        {
            return false;
        }
        return negative.IsDefaultOrEmpty || !(known && AnyMatches(negative, value));
    }

    private static bool AnyMatches(ImmutableArray<StringMatch> matches, ReadOnlySpan<char> value)
    {
        for (int i = 0; i < matches.Length; i++)
        {
            if (Matches(matches[i], value))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The service-account field: its string form and its {namespace, serviceAccount} form, OR'd.</summary>
    private static bool ServiceAccountField(PolicyMatch m, in Peer peer)
    {
        bool hasPositive = !m.ServiceAccounts.IsDefaultOrEmpty || !m.NamespacedServiceAccounts.IsDefaultOrEmpty;
        if (hasPositive && !(peer.Authenticated && AnyServiceAccount(m.ServiceAccounts, m.NamespacedServiceAccounts, peer)))
        {
            return false;
        }
        bool hasNegative = !m.NotServiceAccounts.IsDefaultOrEmpty || !m.NotNamespacedServiceAccounts.IsDefaultOrEmpty;
        return !hasNegative || !(peer.Authenticated && AnyServiceAccount(m.NotServiceAccounts, m.NotNamespacedServiceAccounts, peer));
    }

    private static bool AnyServiceAccount(ImmutableArray<StringMatch> names, ImmutableArray<ServiceAccountMatch> scoped, in Peer peer)
    {
        if (!names.IsDefaultOrEmpty && AnyMatches(names, peer.ServiceAccount))
        {
            return true;
        }
        for (int i = 0; !scoped.IsDefaultOrEmpty && i < scoped.Length; i++)
        {
            if (peer.Namespace.SequenceEqual(scoped[i].Namespace) && peer.ServiceAccount.SequenceEqual(scoped[i].ServiceAccount))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Istio's string match on a span (an unknown value is the empty span, which only Exact("") and Prefix/Suffix("") match).</summary>
    private static bool Matches(in StringMatch m, ReadOnlySpan<char> value) => m.Kind switch
    {
        StringMatchKind.Exact => value.SequenceEqual(m.Value),
        StringMatchKind.Prefix => value.StartsWith(m.Value, StringComparison.Ordinal),
        StringMatchKind.Suffix => value.EndsWith(m.Value, StringComparison.Ordinal),
        StringMatchKind.Presence => !value.IsEmpty,
        _ => false,
    };

    /// <summary>
    /// The peer's identity as spans (no allocation): principal without "spiffe://", namespace and service
    /// account from the connection or parsed out of "td/ns/NS/sa/SA". Without a principal all are empty,
    /// which is how ztunnel sees a plaintext peer (its namespace check compares against "").
    /// </summary>
    private readonly ref struct Peer
    {
        public readonly bool Authenticated;
        public readonly ReadOnlySpan<char> Principal;
        public readonly ReadOnlySpan<char> Namespace;
        public readonly ReadOnlySpan<char> ServiceAccount;

        public Peer(in ConnectionInfo c)
        {
            if (string.IsNullOrEmpty(c.SourcePrincipal))
            {
                return;
            }
            Authenticated = true;
            ReadOnlySpan<char> p = c.SourcePrincipal;
            if (p.StartsWith("spiffe://", StringComparison.Ordinal))
            {
                p = p["spiffe://".Length..];
            }
            Principal = p;
            ReadOnlySpan<char> ns = default, sa = default;
            int nsAt = p.IndexOf("/ns/", StringComparison.Ordinal);
            if (nsAt >= 0)
            {
                ReadOnlySpan<char> rest = p[(nsAt + 4)..];
                int saAt = rest.IndexOf("/sa/", StringComparison.Ordinal);
                if (saAt >= 0)
                {
                    ns = rest[..saAt];
                    sa = rest[(saAt + 4)..];
                }
            }
            Namespace = c.SourceNamespace ?? ns;
            ServiceAccount = c.SourceServiceAccount ?? sa;
        }
    }
}
