using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using Ambient.Mesh.State;
using Ambient.Waypoint.Hbone;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Authorization;

/// <summary>The outcome of L7 authorization for one request.</summary>
/// <param name="Policy">The policy that decided ("ns/name"), or null (no policy / no ALLOW matched).</param>
internal readonly record struct L7Decision(bool Allowed, string? Policy, string Reason, ImmutableArray<string> DryRun, ImmutableArray<string> Audit);

/// <summary>
/// Istio AuthorizationPolicy as a waypoint enforces it: the policies whose <c>targetRefs</c> name this waypoint's
/// Gateway or the request's destination Service, evaluated per request as Istio does: CUSTOM first (not supported
/// here, so it denies: fail closed), then DENY (any matching rule denies), then ALLOW (when any ALLOW policy applies,
/// one of its rules must match; none applying allows). AUDIT policies only mark; dry-run ones only report.
/// Values use Istio's matching: exact, "prefix*", "*suffix" and "*" (presence).
/// </summary>
internal static class L7Authorizer
{
    public static L7Decision Evaluate(MeshSnapshot snapshot, WaypointIdentity me, TunnelInfo tunnel, Service? destination, HttpRequest request) =>
        Evaluate(Applicable(snapshot, me, destination), tunnel, destination, request);

    /// <summary>The evaluation over given policies (the TCP proxy passes them with their HTTP-only parts taken out).</summary>
    internal static L7Decision Evaluate(List<IstioAuthorizationPolicy> policies, TunnelInfo tunnel, Service? destination, HttpRequest request)
    {
        if (policies.Count == 0)
        {
            return new L7Decision(true, null, "no policy applies", [], []);
        }
        var input = new RequestAttributes(tunnel, destination, request);
        ImmutableArray<string>.Builder? dryRun = null, audit = null;
        foreach (var p in policies)
        {
            if (p.DryRun)
            {
                if (p.Action is AuthorizationAction.Allow or AuthorizationAction.Deny && AnyRule(p, input) == (p.Action == AuthorizationAction.Deny))
                {
                    (dryRun ??= ImmutableArray.CreateBuilder<string>()).Add($"{p.Namespace}/{p.Name}");
                }
                continue;
            }
            if (p.Action == AuthorizationAction.Audit && AnyRule(p, input))
            {
                (audit ??= ImmutableArray.CreateBuilder<string>()).Add($"{p.Namespace}/{p.Name}");
            }
        }
        var dry = dryRun?.ToImmutable() ?? [];
        var aud = audit?.ToImmutable() ?? [];
        foreach (var p in policies)
        {
            if (!p.DryRun && p.Action == AuthorizationAction.Custom && AnyRule(p, input))
            {
                return new L7Decision(false, $"{p.Namespace}/{p.Name}", $"CUSTOM policy {p.Namespace}/{p.Name} (provider {p.Provider}) needs an external authorizer this waypoint does not have", dry, aud);
            }
        }
        foreach (var p in policies)
        {
            if (!p.DryRun && p.Action == AuthorizationAction.Deny && AnyRule(p, input))
            {
                return new L7Decision(false, $"{p.Namespace}/{p.Name}", $"denied by DENY policy {p.Namespace}/{p.Name}", dry, aud);
            }
        }
        bool anyAllow = false;
        foreach (var p in policies)
        {
            if (!p.DryRun && p.Action == AuthorizationAction.Allow)
            {
                anyAllow = true;
                if (AnyRule(p, input))
                {
                    return new L7Decision(true, $"{p.Namespace}/{p.Name}", $"allowed by {p.Namespace}/{p.Name}", dry, aud);
                }
            }
        }
        return anyAllow
            ? new L7Decision(false, null, "no ALLOW policy matched", dry, aud)
            : new L7Decision(true, null, "no ALLOW policy applies", dry, aud);
    }

    /// <summary>Policies that target this waypoint's Gateway (in its namespace) or the destination Service (in its).</summary>
    internal static List<IstioAuthorizationPolicy> Applicable(MeshSnapshot snapshot, WaypointIdentity me, Service? destination)
    {
        var result = new List<IstioAuthorizationPolicy>();
        foreach (var p in snapshot.ObjectsOf<IstioAuthorizationPolicy>())
        {
            foreach (var t in p.TargetRefs)
            {
                // A targetRef names an object in the policy's own namespace.
                bool gateway = t.Kind == "Gateway" && t.Group == Mesh.Model.L7.ParentReference.GatewayGroup && t.Name == me.Name && p.Namespace == me.Namespace;
                bool service = destination is not null && t.Kind == "Service" && t.Group.Length == 0 && t.Name == destination.Name && p.Namespace == destination.Namespace;
                if (gateway || service)
                {
                    result.Add(p);
                    break;
                }
            }
        }
        return result;
    }

    private static bool AnyRule(IstioAuthorizationPolicy p, in RequestAttributes input)
    {
        // No rules: an ALLOW allows nothing, a DENY denies nothing (Istio); "rules: [{}]" matches everything.
        foreach (var rule in p.Rules)
        {
            if (RuleMatches(rule, p.Namespace, input))
            {
                return true;
            }
        }
        return false;
    }

    private static bool RuleMatches(IstioAuthorizationRule rule, string policyNamespace, in RequestAttributes input)
    {
        if (!rule.From.IsDefaultOrEmpty)
        {
            bool any = false;
            foreach (var f in rule.From)
            {
                if (SourceMatches(f, policyNamespace, input))
                {
                    any = true;
                    break;
                }
            }
            if (!any)
            {
                return false;
            }
        }
        if (!rule.To.IsDefaultOrEmpty)
        {
            bool any = false;
            foreach (var t in rule.To)
            {
                if (OperationMatches(t, input))
                {
                    any = true;
                    break;
                }
            }
            if (!any)
            {
                return false;
            }
        }
        foreach (var c in rule.When)
        {
            if (!ConditionMatches(c, input))
            {
                return false;
            }
        }
        return true;
    }

    private static bool SourceMatches(IstioAuthorizationSource s, string policyNamespace, in RequestAttributes a)
    {
        string principal = a.Tunnel.Peer.Principal;
        string ns = a.Tunnel.Peer.Namespace;
        return Field(s.Principals, s.NotPrincipals, principal)
            && Field(s.Namespaces, s.NotNamespaces, ns)
            && ServiceAccounts(s.ServiceAccounts, s.NotServiceAccounts, policyNamespace, a)
            // No JWT authentication in the waypoint yet: a request has no request principal.
            && Field(s.RequestPrincipals, s.NotRequestPrincipals, null)
            && Ips(s.IpBlocks, s.NotIpBlocks, a.Tunnel.Client.Address)
            && Ips(s.RemoteIpBlocks, s.NotRemoteIpBlocks, a.RemoteIp);
    }

    private static bool OperationMatches(IstioAuthorizationOperation o, in RequestAttributes a)
    {
        string host = a.Request.Host.Host;
        string path = a.Request.Path.HasValue ? a.Request.Path.Value! : "/";
        return FieldIgnoreCase(o.Hosts, o.NotHosts, host, a.Request.Host.Value ?? host)
            && Ports(o.Ports, o.NotPorts, a.Tunnel.Authority.Port)
            && Field(o.Methods, o.NotMethods, a.Request.Method)
            && Field(o.Paths, o.NotPaths, path);
    }

    private static bool ConditionMatches(IstioAuthorizationCondition c, in RequestAttributes a)
    {
        string? value = Attribute(c.Key, a);
        if (!c.Values.IsDefaultOrEmpty && (value is null || !AnyGlob(c.Values, value)))
        {
            return false;
        }
        if (!c.NotValues.IsDefaultOrEmpty && value is not null && AnyGlob(c.NotValues, value))
        {
            return false;
        }
        return true;
    }

    /// <summary>The value of a <c>when</c> key for this request; null when the request has no such attribute.</summary>
    internal static string? Attribute(string key, in RequestAttributes a)
    {
        if (key.StartsWith("request.headers[", StringComparison.Ordinal) && key.EndsWith(']'))
        {
            string name = key["request.headers[".Length..^1];
            return a.Request.Headers.TryGetValue(name, out var v) && v.Count > 0 ? v.ToString() : null;
        }
        return key switch
        {
            "source.ip" => a.Tunnel.Client.Address.ToString(),
            "remote.ip" => a.RemoteIp.ToString(),
            "source.namespace" => a.Tunnel.Peer.Namespace,
            "source.principal" => a.Tunnel.Peer.Principal,
            "destination.ip" => a.Tunnel.Authority.Address.ToString(),
            "destination.port" => a.Tunnel.Authority.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "connection.sni" => null,
            _ => null, // request.auth.* (no JWT here), experimental keys: never match a value
        };
    }

    private static bool Field(ImmutableArray<string> positive, ImmutableArray<string> negative, string? value)
    {
        if (!positive.IsDefaultOrEmpty && (value is null || !AnyGlob(positive, value)))
        {
            return false;
        }
        return negative.IsDefaultOrEmpty || value is null || !AnyGlob(negative, value);
    }

    // Hosts compare case-insensitively and match with or without the port (Istio adds both forms).
    private static bool FieldIgnoreCase(ImmutableArray<string> positive, ImmutableArray<string> negative, string host, string hostAndPort)
    {
        bool Any(ImmutableArray<string> list) => AnyGlob(list, host, ignoreCase: true) || AnyGlob(list, hostAndPort, ignoreCase: true);
        if (!positive.IsDefaultOrEmpty && !Any(positive))
        {
            return false;
        }
        return negative.IsDefaultOrEmpty || !Any(negative);
    }

    private static bool ServiceAccounts(ImmutableArray<string> positive, ImmutableArray<string> negative, string policyNamespace, in RequestAttributes a)
    {
        var peer = a.Tunnel.Peer;
        string full = $"{peer.Namespace}/{peer.ServiceAccount}";
        // "ns/sa", or a bare "sa" meaning that account in the policy's own namespace.
        bool Matches(string sa) => sa.Contains('/', StringComparison.Ordinal) ? sa == full : peer.Namespace == policyNamespace && sa == peer.ServiceAccount;
        if (!positive.IsDefaultOrEmpty && !positive.Any(Matches))
        {
            return false;
        }
        return negative.IsDefaultOrEmpty || !negative.Any(Matches);
    }

    private static bool Ports(ImmutableArray<int> positive, ImmutableArray<int> negative, int port) =>
        (positive.IsDefaultOrEmpty || positive.Contains(port)) && (negative.IsDefaultOrEmpty || !negative.Contains(port));

    private static bool Ips(ImmutableArray<IpNet> positive, ImmutableArray<IpNet> negative, IPAddress ip) =>
        (positive.IsDefaultOrEmpty || positive.Any(n => n.Contains(ip))) && (negative.IsDefaultOrEmpty || !negative.Any(n => n.Contains(ip)));

    private static bool AnyGlob(ImmutableArray<string> patterns, string value, bool ignoreCase = false)
    {
        foreach (var p in patterns)
        {
            if (Glob(p, value, ignoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Istio's string match: "*" is presence (any non-empty value), "x*" prefix, "*x" suffix, else exact.</summary>
    internal static bool Glob(string pattern, string value, bool ignoreCase = false)
    {
        var cmp = ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        if (pattern == "*")
        {
            return value.Length > 0;
        }
        if (pattern.EndsWith('*'))
        {
            return value.StartsWith(pattern[..^1], cmp);
        }
        if (pattern.StartsWith('*'))
        {
            return value.EndsWith(pattern[1..], cmp);
        }
        return string.Equals(pattern, value, cmp);
    }
}

/// <summary>What a policy can look at for one request.</summary>
internal readonly record struct RequestAttributes(TunnelInfo Tunnel, Service? Destination, HttpRequest Request)
{
    /// <summary>The original client from the first X-Forwarded-For entry (remoteIpBlocks), else the source address.</summary>
    public IPAddress RemoteIp =>
        Request.Headers.TryGetValue("x-forwarded-for", out var xff) && xff.Count > 0
        && IPAddress.TryParse(xff[0]!.Split(',')[0].Trim(), out var ip) ? ip : Tunnel.Client.Address;
}
