using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Mesh.Policy;
using Ambient.Mesh.State;

namespace Ambient.Mesh.Tests.Policy;

/// <summary>
/// Istio's L4 authorization cases, table-driven. The per-field rows mirror ztunnel's own rbac.rs table
/// (the same three connections: plaintext, an identity, another identity), the rest cover its structural
/// edge cases and the allow/deny/dry-run flow of assert_rbac.
/// </summary>
public sealed class AuthorizerTests
{
    private static readonly ConnectionInfo Plaintext = new(Ip("127.0.0.1"), Ip("127.0.0.2"), 8080, null, null, null);
    private static readonly ConnectionInfo Tls = new(Ip("127.0.0.1"), Ip("127.0.0.2"), 8080, "td/ns/namespace/sa/account", null, null);
    private static readonly ConnectionInfo TlsAlt = new(Ip("127.0.0.3"), Ip("127.0.0.4"), 9090, "td-alt/ns/ns-alt/sa/sa-alt", null, null);

    private static readonly Workload Destination = new() { Uid = "dst", Name = "dst", Namespace = "namespace" };

    private static IPAddress Ip(string s) => IPAddress.Parse(s);

    private static StringMatch Exact(string v) => new(StringMatchKind.Exact, v);

    private static IpNet Net(string ip, int len) => new(Ip(ip), len);

    private static AuthorizationPolicy Policy(string name, PolicyAction action, params PolicyRule[] rules) => new()
    {
        Name = name,
        Namespace = "namespace",
        Scope = PolicyScope.Global,
        Action = action,
        Rules = [.. rules],
    };

    private static AuthorizationPolicy Allow(PolicyMatch m) => Policy("allow", PolicyAction.Allow, Rule(Clause(m)));

    private static PolicyRule Rule(params PolicyClause[] clauses) => new([.. clauses]);

    private static PolicyClause Clause(params PolicyMatch[] matches) => new([.. matches]);

    private sealed record Case(AuthorizationPolicy[] Policies, ConnectionInfo Conn, bool Allowed, string? Key = null, string[]? DryRun = null);

    private static readonly Dictionary<string, Case> Cases = BuildCases();

    private static Dictionary<string, Case> BuildCases()
    {
        var cases = new Dictionary<string, Case>();

        // Per field, an ALLOW policy with one match: does each connection get in? (ztunnel's rbac_test! rows)
        void Row(string name, PolicyMatch m, bool plaintext, bool tls, bool tlsAlt)
        {
            AuthorizationPolicy p = Allow(m);
            cases[$"{name}/plaintext"] = new Case([p], Plaintext, plaintext, plaintext ? "namespace/allow" : null);
            cases[$"{name}/tls"] = new Case([p], Tls, tls, tls ? "namespace/allow" : null);
            cases[$"{name}/tls-alt"] = new Case([p], TlsAlt, tlsAlt, tlsAlt ? "namespace/allow" : null);
        }
        Row("namespaces", new PolicyMatch { Namespaces = [Exact("namespace")] }, false, true, false);
        Row("notNamespaces", new PolicyMatch { NotNamespaces = [Exact("namespace")] }, true, false, true);
        Row("serviceAccounts", new PolicyMatch { NamespacedServiceAccounts = [new("namespace", "account")] }, false, true, false);
        Row("notServiceAccounts", new PolicyMatch { NotNamespacedServiceAccounts = [new("namespace", "account")] }, true, false, true);
        Row("serviceAccountName", new PolicyMatch { ServiceAccounts = [Exact("account")] }, false, true, false);
        Row("principals", new PolicyMatch { Principals = [Exact("td/ns/namespace/sa/account")] }, false, true, false);
        Row("notPrincipals", new PolicyMatch { NotPrincipals = [Exact("td/ns/namespace/sa/account")] }, true, false, true);
        Row("principalPresence", new PolicyMatch { Principals = [new(StringMatchKind.Presence, "")] }, false, true, true);
        Row("principalPrefix", new PolicyMatch { Principals = [new(StringMatchKind.Prefix, "td/")] }, false, true, false);
        Row("principalSuffix", new PolicyMatch { Principals = [new(StringMatchKind.Suffix, "/sa/sa-alt")] }, false, false, true);
        Row("sourceIps", new PolicyMatch { SourceIps = [Net("127.0.0.1", 32)] }, true, true, false);
        Row("notSourceIps", new PolicyMatch { NotSourceIps = [Net("127.0.0.1", 32)] }, false, false, true);
        Row("destinationIps", new PolicyMatch { DestinationIps = [Net("127.0.0.2", 32)] }, true, true, false);
        Row("notDestinationIps", new PolicyMatch { NotDestinationIps = [Net("127.0.0.2", 32)] }, false, false, true);
        Row("cidrRange", new PolicyMatch { DestinationIps = [Net("127.0.0.0", 24)] }, true, true, true);
        Row("destinationPorts", new PolicyMatch { DestinationPorts = [8080] }, true, true, false);
        Row("notDestinationPorts", new PolicyMatch { NotDestinationPorts = [8080] }, false, false, true);
        Row("fieldsAnd", new PolicyMatch { Namespaces = [Exact("namespace")], DestinationPorts = [9090] }, false, false, false);
        Row("valuesOr", new PolicyMatch { Namespaces = [Exact("namespace"), Exact("ns-alt")] }, false, true, true);
        Row("positiveAndNot", new PolicyMatch { DestinationIps = [Net("127.0.0.0", 8)], NotDestinationPorts = [9090] }, true, true, false);

        // Structure (ztunnel rbac_empty_policy): no rules matches nothing; a rule with no clauses, or a clause
        // with no matches, matches everything; an empty match matches nothing.
        cases["allow-no-rules-is-allow-nothing"] = new Case([Policy("p", PolicyAction.Allow)], Tls, false);
        cases["deny-no-rules-denies-nothing"] = new Case([Policy("p", PolicyAction.Deny)], Tls, true);
        cases["rule-without-clauses-matches"] = new Case([Policy("p", PolicyAction.Allow, Rule())], Plaintext, true, "namespace/p");
        cases["clause-without-matches-matches"] = new Case([Policy("p", PolicyAction.Allow, Rule(Clause()))], Plaintext, true, "namespace/p");
        cases["empty-match-matches-nothing"] = new Case([Policy("p", PolicyAction.Allow, Rule(Clause(new PolicyMatch())))], Plaintext, false);

        // rbac_nesting: matches in a clause OR'd, clauses AND'd.
        AuthorizationPolicy nested = Policy("nested", PolicyAction.Allow, Rule(
            Clause(new PolicyMatch { Namespaces = [Exact("a")] }, new PolicyMatch { Namespaces = [Exact("namespace")] }),
            Clause(new PolicyMatch { DestinationPorts = [8080] })));
        cases["nested-both-clauses"] = new Case([nested], Tls, true, "namespace/nested");
        cases["nested-wrong-port"] = new Case([nested], Tls with { DestinationPort = 12345 }, false);
        cases["nested-wrong-namespace"] = new Case([nested], TlsAlt with { DestinationPort = 8080 }, false);

        // rbac_multi_rule: rules OR'd.
        AuthorizationPolicy multi = Policy("multi", PolicyAction.Allow,
            Rule(Clause(new PolicyMatch { Namespaces = [Exact("a")] })),
            Rule(Clause(new PolicyMatch { Namespaces = [Exact("ns-alt")] })));
        cases["multi-rule-second-matches"] = new Case([multi], TlsAlt, true, "namespace/multi");
        cases["multi-rule-none-matches"] = new Case([multi], Tls, false);

        // The allow/deny flow.
        AuthorizationPolicy denyAlt = Policy("deny-alt", PolicyAction.Deny, Rule(Clause(new PolicyMatch { Namespaces = [Exact("ns-alt")] })));
        AuthorizationPolicy allowAll = Policy("allow-all", PolicyAction.Allow, Rule());
        cases["no-policies-allows"] = new Case([], Plaintext, true);
        cases["deny-beats-allow"] = new Case([allowAll, denyAlt], TlsAlt, false, "namespace/deny-alt");
        cases["deny-not-matching-then-allow"] = new Case([allowAll, denyAlt], Tls, true, "namespace/allow-all");
        cases["only-deny-not-matching-allows"] = new Case([denyAlt], Tls, true);
        AuthorizationPolicy requireMtls = Policy("require-mtls", PolicyAction.Deny,
            Rule(Clause(new PolicyMatch { NotPrincipals = [new(StringMatchKind.Presence, "")] })));
        cases["deny-notPrincipals-presence-denies-plaintext"] = new Case([requireMtls], Plaintext, false, "namespace/require-mtls");
        cases["deny-notPrincipals-presence-admits-mtls"] = new Case([requireMtls], Tls, true);
        AuthorizationPolicy denyOtherNs = Policy("deny-other-ns", PolicyAction.Deny,
            Rule(Clause(new PolicyMatch { NotNamespaces = [Exact("namespace")] })));
        cases["deny-notNamespaces-denies-plaintext"] = new Case([denyOtherNs], Plaintext, false, "namespace/deny-other-ns");

        // Dry run: never decides, never counts as "an ALLOW applies", but is reported when it matches.
        AuthorizationPolicy dryDeny = denyAlt with { Name = "dry-deny", DryRun = true };
        AuthorizationPolicy dryAllow = Policy("dry-allow", PolicyAction.Allow, Rule(Clause(new PolicyMatch { DestinationPorts = [1] }))) with { DryRun = true };
        cases["dry-run-deny-reported-not-enforced"] = new Case([dryDeny], TlsAlt, true, null, ["namespace/dry-deny"]);
        cases["dry-run-allow-does-not-count"] = new Case([dryAllow], TlsAlt, true, null, []);
        cases["dry-run-with-enforced-allow"] = new Case([dryDeny, allowAll], TlsAlt, true, "namespace/allow-all", ["namespace/dry-deny"]);

        // Identity details.
        cases["principal-with-spiffe-scheme"] = new Case([Allow(new PolicyMatch { Principals = [Exact("td/ns/namespace/sa/account")] })],
            Tls with { SourcePrincipal = "spiffe://td/ns/namespace/sa/account" }, true, "namespace/allow");
        cases["unauthenticated-namespace-ignored"] = new Case([Allow(new PolicyMatch { Namespaces = [Exact("namespace")] })],
            Plaintext with { SourceNamespace = "namespace", SourceServiceAccount = "account" }, false);
        cases["explicit-namespace-used-with-identity"] = new Case([Allow(new PolicyMatch { Namespaces = [Exact("other")] })],
            Tls with { SourceNamespace = "other" }, true, "namespace/allow");
        cases["ipv4-mapped-source"] = new Case([Allow(new PolicyMatch { SourceIps = [Net("127.0.0.0", 8)] })],
            Plaintext with { SourceIp = Ip("::ffff:127.0.0.1") }, true, "namespace/allow");
        cases["ipv6-cidr"] = new Case([Allow(new PolicyMatch { SourceIps = [Net("fd00::", 8)] })],
            Plaintext with { SourceIp = Ip("fd00::5") }, true, "namespace/allow");
        cases["ipv6-source-vs-ipv4-cidr"] = new Case([Allow(new PolicyMatch { SourceIps = [Net("0.0.0.0", 0)] })],
            Plaintext with { SourceIp = Ip("fd00::5") }, false);
        return cases;
    }

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (string name in Cases.Keys)
        {
            data.Add(name);
        }
        return data;
    }

    [Fact]
    public void TableHasAtLeast25Cases() => Assert.True(Cases.Count >= 25);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Evaluate(string name)
    {
        Case c = Cases[name];
        MeshSnapshot snapshot = MeshSnapshot.Build(new MeshConfig { Workloads = [Destination], Policies = [.. c.Policies] }, 1);
        AuthorizationDecision d = Authorizer.Evaluate(snapshot, Destination, c.Conn);
        Assert.Equal(c.Allowed, d.Allowed);
        Assert.Equal(c.Key, d.PolicyKey);
        Assert.Equal<string>(c.DryRun ?? [], d.DryRunMatches);
        Assert.False(string.IsNullOrEmpty(d.Reason));
    }

    [Fact]
    public void ScopesDecideWhichPoliciesApply()
    {
        AuthorizationPolicy denyAll = Policy("deny-all", PolicyAction.Deny, Rule());
        var selected = new Workload { Uid = "sel", Name = "sel", Namespace = "namespace", AuthorizationPolicies = ["namespace/deny-all"] };
        var other = new Workload { Uid = "other", Name = "other", Namespace = "namespace" };
        var otherNs = new Workload { Uid = "o2", Name = "o2", Namespace = "elsewhere" };

        MeshSnapshot ws = MeshSnapshot.Build(new MeshConfig
        {
            Workloads = [selected, other],
            Policies = [denyAll with { Scope = PolicyScope.WorkloadSelector }],
        }, 1);
        Assert.False(Authorizer.Evaluate(ws, selected, Tls).Allowed);
        Assert.True(Authorizer.Evaluate(ws, other, Tls).Allowed);

        MeshSnapshot ns = MeshSnapshot.Build(new MeshConfig { Policies = [denyAll with { Scope = PolicyScope.Namespace }] }, 1);
        Assert.False(Authorizer.Evaluate(ns, other, Tls).Allowed);
        Assert.True(Authorizer.Evaluate(ns, otherNs, Tls).Allowed);

        MeshSnapshot global = MeshSnapshot.Build(new MeshConfig { Policies = [denyAll] }, 1);
        Assert.False(Authorizer.Evaluate(global, otherNs, Tls).Allowed);
    }

    [Fact]
    public void LoadedFromYamlEvaluatesTheSame()
    {
        MeshConfig config = ConfigLoader.Parse("""
            workloads:
            - {uid: dst, name: dst, namespace: namespace}
            policies:
            - name: p
              namespace: namespace
              scope: Namespace
              action: Allow
              rules:
              - - - principals: ["td/ns/namespace/*"]
                - - destinationPorts: [8080]
            """, "p.yaml").Config!;
        MeshSnapshot s = MeshSnapshot.Build(config, 1);
        Workload dst = s.FindWorkloadByUid("dst")!;
        Assert.True(Authorizer.Evaluate(s, dst, Tls).Allowed);
        Assert.False(Authorizer.Evaluate(s, dst, TlsAlt).Allowed);
        Assert.False(Authorizer.Evaluate(s, dst, Tls with { DestinationPort = 1 }).Allowed);
    }

    [Fact]
    public void EvaluateDoesNotAllocate()
    {
        AuthorizationPolicy deny = Policy("deny", PolicyAction.Deny, Rule(Clause(
            new PolicyMatch { NotPrincipals = [new(StringMatchKind.Prefix, "td/")], SourceIps = [Net("10.0.0.0", 8)] })));
        AuthorizationPolicy allow = Policy("allow", PolicyAction.Allow, Rule(
            Clause(new PolicyMatch { Namespaces = [Exact("x"), Exact("namespace")] }, new PolicyMatch { DestinationPorts = [1] }),
            Clause(new PolicyMatch { DestinationIps = [Net("127.0.0.0", 8)], NamespacedServiceAccounts = [new("namespace", "account")] })));
        MeshSnapshot s = MeshSnapshot.Build(new MeshConfig { Workloads = [Destination], Policies = [deny, allow] }, 1);
        ConnectionInfo mapped = Tls with { SourceIp = Ip("::ffff:127.0.0.1"), SourcePrincipal = "spiffe://td/ns/namespace/sa/account" };
        for (int i = 0; i < 3; i++)
        {
            _ = Authorizer.Evaluate(s, Destination, Tls);
            _ = Authorizer.Evaluate(s, Destination, mapped);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool all = true;
        for (int i = 0; i < 1000; i++)
        {
            all &= Authorizer.Evaluate(s, Destination, Tls).Allowed;
            all &= Authorizer.Evaluate(s, Destination, mapped).Allowed;
            all &= !Authorizer.Evaluate(s, Destination, TlsAlt).Allowed;
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(all);
    }
}
