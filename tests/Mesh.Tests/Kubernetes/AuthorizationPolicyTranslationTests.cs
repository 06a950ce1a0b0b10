using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Model;
using Ambient.Mesh.Policy;
using static Ambient.Mesh.Tests.Kubernetes.KubeTestUtil;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>
/// Istio AuthorizationPolicy: the full object for the waypoint, and the L4 policy ztunnel enforces, checked by
/// running the translated policy through the same authorizer ztunnel uses.
/// </summary>
public sealed class AuthorizationPolicyTranslationTests
{
    private static ConnectionInfo From(string ns, string sa = "default", int port = 8080, string sourceIp = "10.1.0.5") =>
        new(IPAddress.Parse(sourceIp), IPAddress.Parse("10.2.0.9"), port, $"cluster.local/ns/{ns}/sa/{sa}", null, null);

    private static readonly ConnectionInfo Plaintext = new(IPAddress.Parse("10.1.0.5"), IPAddress.Parse("10.2.0.9"), 8080, null, null, null);

    private static AuthorizationPolicy L4(string spec, string ns = "shop", string extraMetadata = "")
    {
        TranslationResult r = TranslateOk(Policy(spec, ns, extraMetadata));
        return r.Policy(ns, "p");
    }

    private static string Policy(string spec, string ns = "shop", string extraMetadata = "") => $"""
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: p
          namespace: {ns}
        {extraMetadata}
        spec:
        {spec}
        """;

    [Fact]
    public void AllowFromNamespacesOnPortsIsEnforcedAtL4()
    {
        AuthorizationPolicy p = L4("""
              action: ALLOW
              rules:
              - from:
                - source: {namespaces: [frontend, "team-*"]}
                to:
                - operation: {ports: ["8080"]}
            """);
        Assert.Equal((PolicyScope.Namespace, PolicyAction.Allow, false), (p.Scope, p.Action, p.DryRun));
        Assert.True(Authorizer.Matches(p, From("frontend")));
        Assert.True(Authorizer.Matches(p, From("team-blue")));
        Assert.False(Authorizer.Matches(p, From("frontend", port: 9090)));
        Assert.False(Authorizer.Matches(p, From("backend")));
        Assert.False(Authorizer.Matches(p, Plaintext));
    }

    [Fact]
    public void PrincipalsServiceAccountsAndIpBlocksTranslate()
    {
        AuthorizationPolicy p = L4("""
              rules:
              - from:
                - source: {principals: ["cluster.local/ns/frontend/sa/web"]}
                - source: {serviceAccounts: [checkout, "billing/invoicer"]}
                - source: {ipBlocks: ["192.168.10.0/24"], notIpBlocks: ["192.168.10.66"]}
            """);
        Assert.True(Authorizer.Matches(p, From("frontend", "web")));
        Assert.False(Authorizer.Matches(p, From("frontend", "other")));
        Assert.True(Authorizer.Matches(p, From("shop", "checkout"))); // a bare name is in the policy's namespace
        Assert.False(Authorizer.Matches(p, From("other", "checkout")));
        Assert.True(Authorizer.Matches(p, From("billing", "invoicer")));
        Assert.True(Authorizer.Matches(p, From("x", "y", sourceIp: "192.168.10.7")));
        Assert.False(Authorizer.Matches(p, From("x", "y", sourceIp: "192.168.10.66")));
    }

    [Fact]
    public void L4WhenConditionsTranslate()
    {
        AuthorizationPolicy p = L4("""
              action: DENY
              rules:
              - when:
                - {key: source.ip, values: ["10.1.0.0/16"]}
                - {key: destination.port, notValues: ["15021"]}
            """);
        Assert.True(Authorizer.Matches(p, From("a")));
        Assert.False(Authorizer.Matches(p, From("a", port: 15021)));
        Assert.False(Authorizer.Matches(p, From("a", sourceIp: "10.9.0.1")));
    }

    [Fact]
    public void EmptySpecAllowsNothingAndEmptyRuleMatchesEverything()
    {
        TranslationResult r = TranslateOk(Policy("  {}"));
        Assert.False(Authorizer.Matches(r.Policy("shop", "p"), From("any"))); // Istio's allow-nothing
        AuthorizationPolicy allowAll = L4("  rules: [{}]");
        Assert.True(Authorizer.Matches(allowAll, From("any")));
        Assert.True(Authorizer.Matches(allowAll, Plaintext));
    }

    [Fact]
    public void ScopeFollowsSelectorAndRootNamespace()
    {
        string yaml = RunningPod("shop", "web-0", "10.0.0.1", "app: web")
            + RunningPod("shop", "api-0", "10.0.0.2", "app: api")
            + RunningPod("team", "web-0", "10.0.0.3", "app: web")
            + """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: web-only, namespace: shop}
            spec:
              selector: {matchLabels: {app: web}}
              rules: [{from: [{source: {namespaces: [shop]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: mesh-web, namespace: istio-system}
            spec:
              selector: {matchLabels: {app: web}}
              action: DENY
              rules: [{from: [{source: {notNamespaces: [shop, team]}}]}]
            ---
            apiVersion: security.istio.io/v1beta1
            kind: AuthorizationPolicy
            metadata: {name: mesh-wide, namespace: istio-system}
            spec: {action: DENY, rules: [{from: [{source: {ipBlocks: ["203.0.113.0/24"]}}]}]}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: ns-wide, namespace: shop}
            spec: {}
            """;
        TranslationResult r = TranslateOk(yaml);
        Assert.Equal(PolicyScope.WorkloadSelector, r.Policy("shop", "web-only").Scope);
        Assert.Equal(PolicyScope.WorkloadSelector, r.Policy("istio-system", "mesh-web").Scope);
        Assert.Equal(PolicyScope.Global, r.Policy("istio-system", "mesh-wide").Scope);
        Assert.Equal(PolicyScope.Namespace, r.Policy("shop", "ns-wide").Scope);
        Assert.Equal(["istio-system/mesh-web", "shop/web-only"], r.Pod("shop", "web-0").AuthorizationPolicies.ToArray());
        Assert.Empty(r.Pod("shop", "api-0").AuthorizationPolicies);
        Assert.Equal(["istio-system/mesh-web"], r.Pod("team", "web-0").AuthorizationPolicies.ToArray()); // a root selector policy reaches every namespace
    }

    [Fact]
    public void RootNamespaceIsAnOption()
    {
        TranslationResult r = TranslateOk(Policy("  action: DENY\n  rules: [{}]", ns: "mesh-root"), new KubeTranslatorOptions { RootNamespace = "mesh-root" });
        Assert.Equal(PolicyScope.Global, r.Policy("mesh-root", "p").Scope);
    }

    [Fact]
    public void PolicyWithTargetRefsIsForTheWaypointOnly()
    {
        TranslationResult r = TranslateOk(Policy("""
              targetRefs:
              - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}
              action: ALLOW
              rules:
              - to: [{operation: {methods: [GET], paths: ["/api/*"]}}]
            """));
        Assert.Empty(r.Resources.Policies);
        Assert.Empty(r.Warnings);
        IstioAuthorizationPolicy p = r.Object<IstioAuthorizationPolicy>("shop", "p");
        Assert.Equal(new IstioTargetRef("gateway.networking.k8s.io", "Gateway", "waypoint", "shop"), Assert.Single(p.TargetRefs));
        Assert.Equal(["GET"], p.Rules[0].To[0].Methods.ToArray());
    }

    [Fact]
    public void AllowRuleWithHttpFieldsIsDroppedAtZtunnel()
    {
        // Istio: "Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive."
        TranslationResult r = TranslateOk(Policy("""
              action: ALLOW
              rules:
              - from: [{source: {namespaces: [frontend]}}]
                to: [{operation: {methods: [GET]}}]
              - from: [{source: {namespaces: [ops]}}]
            """));
        AuthorizationPolicy p = r.Policy("shop", "p");
        Assert.Single(p.Rules);
        Assert.False(Authorizer.Matches(p, From("frontend"))); // the GET-only rule can never match at L4
        Assert.True(Authorizer.Matches(p, From("ops")));
        ConfigError w = Assert.Single(r.Warnings);
        Assert.Equal("AuthorizationPolicy shop/p: spec.rules", w.Field);
        Assert.Contains("found: methods", w.Message, StringComparison.Ordinal);
        Assert.Contains("ALLOW", w.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AllowPolicyWithOnlyHttpRulesAllowsNothingAtZtunnel()
    {
        AuthorizationPolicy p = L4("""
              rules:
              - to: [{operation: {paths: ["/public/*"]}}]
              - from: [{source: {requestPrincipals: ["https://accounts.example.com/*"]}}]
              - when: [{key: "request.headers[x-tenant]", values: [blue]}]
            """);
        Assert.Empty(p.Rules);
        Assert.False(Authorizer.Matches(p, From("anyone")));
    }

    [Theory]
    // DENY rules with HTTP parts deny on their L4 part alone (more restrictive than written).
    [InlineData("- from: [{source: {namespaces: [untrusted]}}]\n    to: [{operation: {methods: [DELETE]}}]", "untrusted", true)]
    [InlineData("- from: [{source: {namespaces: [untrusted]}}]\n    to: [{operation: {methods: [DELETE]}}]", "trusted", false)]
    [InlineData("- to: [{operation: {paths: [\"/admin\"]}}]", "anyone", true)]
    [InlineData("- when: [{key: \"request.headers[x-debug]\", values: [\"1\"]}]", "anyone", true)]
    [InlineData("- from: [{source: {remoteIpBlocks: [\"1.2.3.4\"], namespaces: [edge]}}]", "edge", true)]
    [InlineData("- from: [{source: {remoteIpBlocks: [\"1.2.3.4\"], namespaces: [edge]}}]", "core", false)]
    [InlineData("- to: [{operation: {methods: [GET]}}, {operation: {ports: [\"22\"]}}]", "anyone", true)]
    [InlineData("- to: [{operation: {methods: [GET], ports: [\"22\"]}}]", "anyone", false)]
    public void DenyRuleWithHttpFieldsDeniesOnItsL4PartAlone(string rules, string sourceNamespace, bool denied)
    {
        TranslationResult r = TranslateOk(Policy($"  action: DENY\n  rules:\n  {rules}"));
        AuthorizationPolicy p = r.Policy("shop", "p");
        Assert.Equal(PolicyAction.Deny, p.Action);
        Assert.Equal(denied, Authorizer.Matches(p, From(sourceNamespace)));
        Assert.Contains("DENY", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("AUDIT", "")]
    [InlineData("CUSTOM", "  provider: {name: ext-authz}")]
    public void AuditAndCustomAreNotEnforcedByZtunnel(string action, string provider)
    {
        TranslationResult r = TranslateOk(Policy($"  action: {action}\n{provider}\n  rules: [{{}}]"));
        Assert.Empty(r.Resources.Policies);
        Assert.Contains($"ztunnel does not enforce {action}", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
        IstioAuthorizationPolicy p = r.Object<IstioAuthorizationPolicy>("shop", "p");
        Assert.Equal(action == "CUSTOM" ? "ext-authz" : null, p.Provider);
    }

    [Fact]
    public void DryRunAnnotationMarksThePolicy()
    {
        AuthorizationPolicy p = L4("  action: DENY\n  rules: [{}]", extraMetadata: "  annotations: {istio.io/dry-run: \"true\"}");
        Assert.True(p.DryRun);
    }

    [Fact]
    public void FullFieldSetIsKeptForTheWaypoint()
    {
        TranslationResult r = TranslateOk(Policy("""
              selector:
                matchLabels: {app: reviews}
              action: DENY
              rules:
              - from:
                - source:
                    principals: ["cluster.local/ns/a/sa/b"]
                    notPrincipals: ["*/ns/bad/*"]
                    requestPrincipals: ["issuer.example.com/*"]
                    notRequestPrincipals: ["issuer.example.com/blocked"]
                    namespaces: [a]
                    notNamespaces: [kube-system]
                    serviceAccounts: [a/b]
                    notServiceAccounts: [a/c]
                    ipBlocks: ["10.0.0.0/8"]
                    notIpBlocks: ["10.9.0.0/16"]
                    remoteIpBlocks: ["198.51.100.0/24"]
                    notRemoteIpBlocks: ["198.51.100.9"]
                to:
                - operation:
                    hosts: [reviews.shop.svc.cluster.local]
                    notHosts: ["*.internal"]
                    ports: ["9080", 9443]
                    notPorts: ["15021"]
                    methods: [POST]
                    notMethods: [GET]
                    paths: ["/reviews/*"]
                    notPaths: ["/health"]
                when:
                - key: request.auth.claims[groups]
                  values: [admins]
                  notValues: [interns]
            """));
        IstioAuthorizationPolicy p = r.Object<IstioAuthorizationPolicy>("shop", "p");
        Assert.Equal("reviews", p.Selector!["app"]);
        Assert.Equal(AuthorizationAction.Deny, p.Action);
        IstioAuthorizationSource s = p.Rules[0].From[0];
        Assert.Equal(["cluster.local/ns/a/sa/b"], s.Principals.ToArray());
        Assert.Equal(["*/ns/bad/*"], s.NotPrincipals.ToArray());
        Assert.Equal(["issuer.example.com/*"], s.RequestPrincipals.ToArray());
        Assert.Equal(["issuer.example.com/blocked"], s.NotRequestPrincipals.ToArray());
        Assert.Equal(["a"], s.Namespaces.ToArray());
        Assert.Equal(["kube-system"], s.NotNamespaces.ToArray());
        Assert.Equal(["a/b"], s.ServiceAccounts.ToArray());
        Assert.Equal(["a/c"], s.NotServiceAccounts.ToArray());
        Assert.Equal("10.0.0.0/8", Assert.Single(s.IpBlocks).ToString());
        Assert.Equal("10.9.0.0/16", Assert.Single(s.NotIpBlocks).ToString());
        Assert.Equal("198.51.100.0/24", Assert.Single(s.RemoteIpBlocks).ToString());
        Assert.Equal("198.51.100.9/32", Assert.Single(s.NotRemoteIpBlocks).ToString());
        IstioAuthorizationOperation op = p.Rules[0].To[0];
        Assert.Equal(["reviews.shop.svc.cluster.local"], op.Hosts.ToArray());
        Assert.Equal(["*.internal"], op.NotHosts.ToArray());
        Assert.Equal([9080, 9443], op.Ports.ToArray());
        Assert.Equal([15021], op.NotPorts.ToArray());
        Assert.Equal(["POST"], op.Methods.ToArray());
        Assert.Equal(["GET"], op.NotMethods.ToArray());
        Assert.Equal(["/reviews/*"], op.Paths.ToArray());
        Assert.Equal(["/health"], op.NotPaths.ToArray());
        IstioAuthorizationCondition c = Assert.Single(p.Rules[0].When);
        Assert.Equal(("request.auth.claims[groups]", "admins", "interns"), (c.Key, c.Values.Single(), c.NotValues.Single()));
        Assert.False(c.IsL4);
        Assert.Equal(PolicyScope.WorkloadSelector, r.Policy("shop", "p").Scope);
    }

    [Theory]
    [InlineData("  rules: [{from: [{source: {principal: [x]}}]}]", 8, "spec.rules[0].from[0].source.principal", "did you mean 'principals'")]
    [InlineData("  rules: [{to: [{operation: {ports: [http]}}]}]", 8, "spec.rules[0].to[0].operation.ports[0]", "not an integer")]
    [InlineData("  rules: [{from: [{source: {ipBlocks: [\"10.0.0.0/33\"]}}]}]", 8, "spec.rules[0].from[0].source.ipBlocks[0]", "prefix length")]
    [InlineData("  rules: [{from: [{source: {}}]}]", 8, "spec.rules[0].from[0].source", "must not be empty")]
    [InlineData("  rules: [{when: [{key: \"request.header[x]\", values: [a]}]}]", 8, "spec.rules[0].when[0].key", "not an Istio condition key")]
    [InlineData("  rules: [{when: [{key: source.ip, values: [nope]}]}]", 8, "spec.rules[0].when[0].values[0]", "not an IP address")]
    [InlineData("  rules: [{when: [{key: source.ip}]}]", 8, "spec.rules[0].when[0]", "values or notValues")]
    [InlineData("  action: ALOW", 8, "spec.action", "not one of: ALLOW, DENY, AUDIT, CUSTOM")]
    [InlineData("  action: CUSTOM", 8, "spec.provider.name", "required")]
    [InlineData("  selector: {matchLabels: {app: a}}\n  targetRefs: [{kind: Service, name: a}]", 9, "spec.targetRefs", "mutually exclusive")]
    [InlineData("  selector: {matchExpressions: []}", 8, "spec.selector.matchExpressions", "only matchLabels")]
    [InlineData("  rule: []", 8, "spec.rule", "did you mean 'rules'")]
    [InlineData("  rules: [{from: [{source: {serviceAccounts: [\"a/b/c\"]}}]}]", 8, "spec.rules[0].from[0].source.serviceAccounts", "not a service account")]
    public void BadFieldsAreErrorsNamingObjectFieldAndLine(string spec, int line, string field, string message)
    {
        TranslationResult r = Translate(Policy(spec) + "\n---\n" + RunningPod("shop", "web-0", "10.0.0.1", "app: web"));
        ConfigError e = r.SingleError();
        Assert.Equal(("test.yaml", line, $"AuthorizationPolicy shop/p: {field}"), (e.File, e.Line, e.Field));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Empty(r.Resources.Policies);
        Assert.DoesNotContain(r.Resources.Objects, o => o is IstioAuthorizationPolicy);
        Assert.Single(r.Resources.Workloads); // the rest still translates
    }
}
