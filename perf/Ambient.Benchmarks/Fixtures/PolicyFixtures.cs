using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using static Ambient.Benchmarks.Fixtures.MeshFixtures;

namespace Ambient.Benchmarks.Fixtures;

/// <summary>
/// 10,000 L4 policies in the mix a large cluster has:
/// <list type="bullet">
/// <item>100 Global DENY policies (50 principal prefixes of quarantined namespaces, 49 source CIDRs, and last
/// the one that denies <see cref="CompromisedPrincipal"/>);</item>
/// <item>9,400 Namespace policies, 47 in each of 200 namespaces <c>team-K</c>: 12 DENY by principal, 5 DENY by
/// source CIDR except the readiness port, 15 ALLOW by client namespace on ports 8080/9090, 10 ALLOW by principal
/// prefix on 443, 4 ALLOW by source CIDR on 5432, and last <c>allow-frontend</c> (namespace frontend, port 8080);</item>
/// <item>500 WorkloadSelector ALLOW policies (5 in each of team-0..team-99), selected by the <c>api</c> workloads.</item>
/// </list>
/// The authorizer only looks at the policies that apply to the destination, so a destination in team-7 sees
/// 47 + 100 + 5 = 152 of them (117 DENY, 35 ALLOW); one in <c>default</c> sees only the 100 global DENYs.
/// The deciding policy is always the last of its kind, so every case scans the whole DENY list.
/// </summary>
public static class PolicyFixtures
{
    public const int Namespaces = 200;
    public const int PerNamespace = 47;
    public const int Global = 100;
    public const int SelectorNamespaces = 100;
    public const int SelectorsPerNamespace = 5;
    public const int Total = Global + Namespaces * PerNamespace + SelectorNamespaces * SelectorsPerNamespace;

    public const string CompromisedPrincipal = "cluster.local/ns/quarantine/sa/compromised";
    public const string FrontendPrincipal = "cluster.local/ns/frontend/sa/web";
    public const string StrangerPrincipal = "cluster.local/ns/stranger/sa/app";

    public static MeshConfig Build()
    {
        var policies = ImmutableArray.CreateBuilder<AuthorizationPolicy>(Total);
        for (int j = 0; j < Global; j++)
        {
            PolicyMatch match = j switch
            {
                < 50 => new PolicyMatch { Principals = [Prefix($"cluster.local/ns/quarantine-{j}/")] },
                < Global - 1 => new PolicyMatch { SourceIps = [Cidr($"192.168.{j}.0", 24)] },
                _ => new PolicyMatch { Principals = [Exact(CompromisedPrincipal)] },
            };
            policies.Add(Policy($"global-deny-{j}", "istio-system", PolicyScope.Global, PolicyAction.Deny, match));
        }
        for (int k = 0; k < Namespaces; k++)
        {
            string ns = $"team-{k}";
            int p = 0;
            for (int j = 0; j < 12; j++, p++)
            {
                policies.Add(Policy($"deny-principal-{j}", ns, PolicyScope.Namespace, PolicyAction.Deny,
                    new PolicyMatch { Principals = [Exact($"cluster.local/ns/{ns}/sa/blocked-{j}")] }));
            }
            for (int j = 0; j < 5; j++, p++)
            {
                policies.Add(Policy($"deny-cidr-{j}", ns, PolicyScope.Namespace, PolicyAction.Deny,
                    new PolicyMatch { SourceIps = [Cidr($"172.16.{k}.{j * 16}", 28)], NotDestinationPorts = [15021] }));
            }
            for (int j = 0; j < 15; j++, p++)
            {
                policies.Add(Policy($"allow-namespace-{j}", ns, PolicyScope.Namespace, PolicyAction.Allow,
                    new PolicyMatch { Namespaces = [Exact($"client-{k}-{j}")], DestinationPorts = [8080, 9090] }));
            }
            for (int j = 0; j < 10; j++, p++)
            {
                policies.Add(Policy($"allow-partner-{j}", ns, PolicyScope.Namespace, PolicyAction.Allow,
                    new PolicyMatch { Principals = [Prefix($"cluster.local/ns/partner-{j}/")], DestinationPorts = [443] }));
            }
            for (int j = 0; j < 4; j++, p++)
            {
                policies.Add(Policy($"allow-cidr-{j}", ns, PolicyScope.Namespace, PolicyAction.Allow,
                    new PolicyMatch { SourceIps = [Cidr($"10.{k}.{j}.0", 24)], DestinationPorts = [5432] }));
            }
            policies.Add(Policy("allow-frontend", ns, PolicyScope.Namespace, PolicyAction.Allow,
                new PolicyMatch { Namespaces = [Exact("frontend")], DestinationPorts = [TargetPort] }));
            if (++p != PerNamespace)
            {
                throw new InvalidOperationException($"expected {PerNamespace} policies per namespace, built {p}");
            }
        }
        var workloads = ImmutableArray.CreateBuilder<Workload>(Namespaces + 1);
        for (int k = 0; k < SelectorNamespaces; k++)
        {
            string ns = $"team-{k}";
            var selected = ImmutableArray.CreateBuilder<string>(SelectorsPerNamespace);
            for (int j = 0; j < SelectorsPerNamespace; j++)
            {
                policies.Add(Policy($"select-{j}", ns, PolicyScope.WorkloadSelector, PolicyAction.Allow,
                    new PolicyMatch { Principals = [Exact($"cluster.local/ns/ops/sa/debugger-{j}")], DestinationPorts = [9090] }));
                selected.Add($"{ns}/select-{j}");
            }
            workloads.Add(Api(k, ns, selected.MoveToImmutable()));
        }
        for (int k = SelectorNamespaces; k < Namespaces; k++)
        {
            workloads.Add(Api(k, $"team-{k}", []));
        }
        workloads.Add(Api(Namespaces, "default", []));
        if (policies.Count != Total)
        {
            throw new InvalidOperationException($"expected {Total} policies, built {policies.Count}");
        }
        return new MeshConfig { TrustDomain = TrustDomain, Workloads = workloads.MoveToImmutable(), Policies = policies.MoveToImmutable() };
    }

    private static Workload Api(int k, string ns, ImmutableArray<string> selected) => new()
    {
        Uid = $"cluster1//v1/Pod/{ns}/api-0",
        Name = "api-0",
        Namespace = ns,
        ServiceAccount = "api",
        WorkloadIps = [IPAddress.Parse($"10.20.{k / 256}.{k % 256}")],
        Protocol = InboundProtocol.Hbone,
        AuthorizationPolicies = selected,
    };

    private static AuthorizationPolicy Policy(string name, string ns, PolicyScope scope, PolicyAction action, PolicyMatch match) => new()
    {
        Name = name,
        Namespace = ns,
        Scope = scope,
        Action = action,
        Rules = [Rule(match)],
    };
}
