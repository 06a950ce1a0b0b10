using System.Collections.Immutable;
using System.Net;
using Google.Protobuf.Collections;
using Ambient.Mesh.Model;
using Pw = Ambient.Mesh.Protos.Istio.Workload;
using Ps = Ambient.Mesh.Protos.Istio.Security;

namespace Ambient.Mesh.Sources.Xds;

/// <summary>
/// istio.workload and istio.security messages to the mesh model. Each method validates what the model relies on and
/// throws <see cref="XdsResourceException"/> with the field and the reason; the caller names the resource.
/// </summary>
internal static class XdsTranslator
{
    public static Workload ToWorkload(Pw.Workload w)
    {
        Require(w.Uid, "uid");
        Require(w.Name, "name");
        Require(w.Namespace, "namespace");
        var ips = ImmutableArray.CreateBuilder<IPAddress>(w.Addresses.Count);
        foreach (var raw in w.Addresses)
        {
            ips.Add(Ip(raw.Span, "addresses"));
        }
        var services = ImmutableDictionary.CreateBuilder<string, ImmutableDictionary<int, int>>(StringComparer.Ordinal);
        foreach ((string key, Pw.PortList list) in w.Services)
        {
            int slash = key.IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0 || slash == key.Length - 1)
            {
                throw new XdsResourceException($"services: key '{key}' is not \"namespace/hostname\"");
            }
            services[key] = Ports(list.Ports, $"services[{key}]");
        }
        return new Workload
        {
            Uid = w.Uid,
            Name = w.Name,
            Namespace = w.Namespace,
            ServiceAccount = w.ServiceAccount.Length > 0 ? w.ServiceAccount : "default",
            TrustDomain = w.TrustDomain,
            WorkloadIps = ips.MoveToImmutable(),
            // Istio's ztunnel does not originate Istio's legacy mTLS either: such a destination gets plain TCP.
            Protocol = w.TunnelProtocol switch
            {
                Pw.TunnelProtocol.Hbone => InboundProtocol.Hbone,
                Pw.TunnelProtocol.None or Pw.TunnelProtocol.LegacyIstioMtls => InboundProtocol.Tcp,
                var p => throw new XdsResourceException($"tunnel_protocol: unknown value {(int)p}"),
            },
            NetworkMode = w.NetworkMode == Pw.NetworkMode.HostNetwork ? NetworkMode.HostNetwork : NetworkMode.Standard,
            Node = w.Node,
            Network = w.Network,
            ClusterId = w.ClusterId,
            WorkloadName = w.WorkloadName,
            WorkloadType = w.WorkloadType switch
            {
                Pw.WorkloadType.Deployment => "deployment",
                Pw.WorkloadType.Cronjob => "cronjob",
                Pw.WorkloadType.Job => "job",
                _ => "pod",
            },
            CanonicalName = w.CanonicalName,
            CanonicalRevision = w.CanonicalRevision,
            Hostname = w.Hostname,
            Status = w.Status == Pw.WorkloadStatus.Unhealthy ? HealthStatus.Unhealthy : HealthStatus.Healthy,
            Capacity = w.Capacity is null ? 1 : checked((int)Math.Min(w.Capacity.Value, int.MaxValue)),
            Locality = w.Locality is null ? new Locality() : new Locality(w.Locality.Region, w.Locality.Zone, w.Locality.Subzone),
            Waypoint = w.Waypoint is null ? null : Gateway(w.Waypoint, "waypoint"),
            AuthorizationPolicies = [.. w.AuthorizationPolicies],
            Services = services.ToImmutable(),
        };
    }

    public static Service ToService(Pw.Service s)
    {
        Require(s.Name, "name");
        Require(s.Namespace, "namespace");
        Require(s.Hostname, "hostname");
        var vips = ImmutableArray.CreateBuilder<NetworkAddress>(s.Addresses.Count);
        foreach (Pw.NetworkAddress a in s.Addresses)
        {
            vips.Add(new NetworkAddress(a.Network, Ip(a.Address.Span, "addresses")));
        }
        LoadBalancing? lb = null;
        if (s.LoadBalancing is { } l)
        {
            var scopes = ImmutableArray.CreateBuilder<LoadBalancingScope>();
            foreach (Pw.LoadBalancing.Types.Scope scope in l.RoutingPreference)
            {
                scopes.Add(scope switch
                {
                    Pw.LoadBalancing.Types.Scope.Region => LoadBalancingScope.Region,
                    Pw.LoadBalancing.Types.Scope.Zone => LoadBalancingScope.Zone,
                    Pw.LoadBalancing.Types.Scope.Subzone => LoadBalancingScope.Subzone,
                    Pw.LoadBalancing.Types.Scope.Node => LoadBalancingScope.Node,
                    Pw.LoadBalancing.Types.Scope.Cluster => LoadBalancingScope.Cluster,
                    Pw.LoadBalancing.Types.Scope.Network => LoadBalancingScope.Network,
                    _ => throw new XdsResourceException($"load_balancing.routing_preference: unsupported scope {scope}"),
                });
            }
            lb = new LoadBalancing(scopes.ToImmutable(), l.Mode switch
            {
                Pw.LoadBalancing.Types.Mode.Strict => LoadBalancingMode.Strict,
                Pw.LoadBalancing.Types.Mode.Failover => LoadBalancingMode.Failover,
                Pw.LoadBalancing.Types.Mode.Passthrough => LoadBalancingMode.Passthrough,
                _ => LoadBalancingMode.Unspecified,
            })
            {
                HealthPolicy = l.HealthPolicy == Pw.LoadBalancing.Types.HealthPolicy.AllowAll ? LoadBalancingHealthPolicy.AllowAll : LoadBalancingHealthPolicy.OnlyHealthy,
            };
        }
        return new Service
        {
            Name = s.Name,
            Namespace = s.Namespace,
            Hostname = s.Hostname,
            Vips = vips.MoveToImmutable(),
            Ports = Ports(s.Ports, "ports"),
            SubjectAltNames = [.. s.SubjectAltNames],
            Waypoint = s.Waypoint is null ? null : Gateway(s.Waypoint, "waypoint"),
            LoadBalancing = lb,
        };
    }

    public static AuthorizationPolicy ToPolicy(Ps.Authorization a)
    {
        Require(a.Name, "name");
        Require(a.Namespace, "namespace");
        var rules = ImmutableArray.CreateBuilder<PolicyRule>(a.Rules.Count);
        for (int r = 0; r < a.Rules.Count; r++)
        {
            var clauses = ImmutableArray.CreateBuilder<PolicyClause>(a.Rules[r].Clauses.Count);
            for (int c = 0; c < a.Rules[r].Clauses.Count; c++)
            {
                var matches = ImmutableArray.CreateBuilder<PolicyMatch>();
                for (int m = 0; m < a.Rules[r].Clauses[c].Matches.Count; m++)
                {
                    matches.Add(Match(a.Rules[r].Clauses[c].Matches[m], $"rules[{r}].clauses[{c}].matches[{m}]"));
                }
                clauses.Add(new PolicyClause(matches.ToImmutable()));
            }
            rules.Add(new PolicyRule(clauses.MoveToImmutable()));
        }
        return new AuthorizationPolicy
        {
            Name = a.Name,
            Namespace = a.Namespace,
            Scope = a.Scope switch
            {
                Ps.Scope.Global => PolicyScope.Global,
                Ps.Scope.Namespace => PolicyScope.Namespace,
                Ps.Scope.WorkloadSelector => PolicyScope.WorkloadSelector,
                var s => throw new XdsResourceException($"scope: unknown value {(int)s}"),
            },
            // An unknown action must not become ALLOW (or DENY) by accident: refuse it, the last good state stays.
            Action = a.Action switch
            {
                Ps.Action.Allow => PolicyAction.Allow,
                Ps.Action.Deny => PolicyAction.Deny,
                var x => throw new XdsResourceException($"action: unknown value {(int)x}"),
            },
            DryRun = a.DryRun,
            Rules = rules.MoveToImmutable(),
        };
    }

    private static PolicyMatch Match(Ps.Match m, string at) => new()
    {
        Namespaces = Strings(m.Namespaces, $"{at}.namespaces"),
        NotNamespaces = Strings(m.NotNamespaces, $"{at}.not_namespaces"),
        Principals = Strings(m.Principals, $"{at}.principals"),
        NotPrincipals = Strings(m.NotPrincipals, $"{at}.not_principals"),
        SourceIps = Nets(m.SourceIps, $"{at}.source_ips"),
        NotSourceIps = Nets(m.NotSourceIps, $"{at}.not_source_ips"),
        DestinationIps = Nets(m.DestinationIps, $"{at}.destination_ips"),
        NotDestinationIps = Nets(m.NotDestinationIps, $"{at}.not_destination_ips"),
        DestinationPorts = PortNumbers(m.DestinationPorts, $"{at}.destination_ports"),
        NotDestinationPorts = PortNumbers(m.NotDestinationPorts, $"{at}.not_destination_ports"),
        NamespacedServiceAccounts = [.. m.ServiceAccounts.Select(s => new ServiceAccountMatch(s.Namespace, s.ServiceAccount))],
        NotNamespacedServiceAccounts = [.. m.NotServiceAccounts.Select(s => new ServiceAccountMatch(s.Namespace, s.ServiceAccount))],
    };

    private static ImmutableArray<StringMatch> Strings(RepeatedField<Ps.StringMatch> list, string at)
    {
        var b = ImmutableArray.CreateBuilder<StringMatch>(list.Count);
        foreach (Ps.StringMatch s in list)
        {
            b.Add(s.MatchTypeCase switch
            {
                Ps.StringMatch.MatchTypeOneofCase.Exact => new StringMatch(StringMatchKind.Exact, s.Exact),
                Ps.StringMatch.MatchTypeOneofCase.Prefix => new StringMatch(StringMatchKind.Prefix, s.Prefix),
                Ps.StringMatch.MatchTypeOneofCase.Suffix => new StringMatch(StringMatchKind.Suffix, s.Suffix),
                Ps.StringMatch.MatchTypeOneofCase.Presence => new StringMatch(StringMatchKind.Presence, ""),
                // An empty match would match nothing in Istio; refusing it is clearer than a rule that silently never applies.
                _ => throw new XdsResourceException($"{at}: a string match with no exact, prefix, suffix or presence"),
            });
        }
        return b.MoveToImmutable();
    }

    private static ImmutableArray<IpNet> Nets(RepeatedField<Ps.Address> list, string at)
    {
        var b = ImmutableArray.CreateBuilder<IpNet>(list.Count);
        foreach (Ps.Address a in list)
        {
            IPAddress ip = Ip(a.Address_.Span, at);
            int max = a.Address_.Length * 8;
            if (a.Length > max)
            {
                throw new XdsResourceException($"{at}: prefix length {a.Length} is longer than the address ({max} bits)");
            }
            b.Add(new IpNet(ip, (int)a.Length));
        }
        return b.MoveToImmutable();
    }

    private static ImmutableArray<int> PortNumbers(RepeatedField<uint> list, string at)
    {
        var b = ImmutableArray.CreateBuilder<int>(list.Count);
        foreach (uint p in list)
        {
            b.Add(p is >= 1 and <= 65535 ? (int)p : throw new XdsResourceException($"{at}: {p} is not a port (1-65535)"));
        }
        return b.MoveToImmutable();
    }

    private static ImmutableDictionary<int, int> Ports(IList<Pw.Port> ports, string at)
    {
        var b = ImmutableDictionary.CreateBuilder<int, int>();
        foreach (Pw.Port p in ports)
        {
            if (p.ServicePort is < 1 or > 65535)
            {
                throw new XdsResourceException($"{at}: service_port {p.ServicePort} is not a port (1-65535)");
            }
            if (p.TargetPort > 65535)
            {
                throw new XdsResourceException($"{at}: target_port {p.TargetPort} is not a port (0-65535)");
            }
            b[(int)p.ServicePort] = (int)p.TargetPort;
        }
        return b.ToImmutable();
    }

    private static GatewayAddress Gateway(Pw.GatewayAddress g, string at)
    {
        int port = g.HboneMtlsPort == 0 ? 15008 : g.HboneMtlsPort <= 65535 ? (int)g.HboneMtlsPort
            : throw new XdsResourceException($"{at}.hbone_mtls_port: {g.HboneMtlsPort} is not a port");
        return g.DestinationCase switch
        {
            Pw.GatewayAddress.DestinationOneofCase.Hostname when g.Hostname.Hostname.Length > 0 =>
                new GatewayAddress(g.Hostname.Hostname, g.Hostname.Namespace, null, "", port),
            Pw.GatewayAddress.DestinationOneofCase.Address =>
                new GatewayAddress(null, null, Ip(g.Address.Address.Span, $"{at}.address"), g.Address.Network, port),
            _ => throw new XdsResourceException($"{at}: neither a hostname nor an address"),
        };
    }

    private static IPAddress Ip(ReadOnlySpan<byte> raw, string at) => raw.Length is 4 or 16
        ? new IPAddress(raw)
        : throw new XdsResourceException($"{at}: {raw.Length} bytes is not an IPv4 (4) or IPv6 (16) address");

    private static void Require(string value, string field)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new XdsResourceException($"{field} is required");
        }
    }
}

/// <summary>A resource the control plane sent that cannot be applied; the message names the field.</summary>
internal sealed class XdsResourceException(string message) : Exception(message);
