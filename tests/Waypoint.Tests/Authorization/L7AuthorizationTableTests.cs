using Ambient.Waypoint.Authorization;
using Ambient.Waypoint.Tests.Support;

namespace Ambient.Waypoint.Tests.Authorization;

/// <summary>AuthorizationPolicy with targetRefs, evaluated per request with Istio's semantics.</summary>
public sealed class L7AuthorizationTableTests
{
    private static string Policy(string name, string action, string target, string rules) => $$"""
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: {{name}}, namespace: shop}
        spec:
          targetRefs: [{{target}}]
          action: {{action}}
          rules:
        {{rules}}
        """;

    private const string ToGateway = "{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}";
    private const string ToEcho = "{kind: Service, group: \"\", name: echo}";
    private const string ToOther = "{kind: Service, group: \"\", name: other}";

    private static bool Allowed(string policies, string method, string path, string serviceAccount = "client", string ns = "shop", params string[] headers)
    {
        var snapshot = Snapshots.Build(policies);
        var tunnel = Snapshots.Tunnel(snapshot, serviceAccount, ns);
        return L7Authorizer.Evaluate(snapshot, Snapshots.Waypoint, tunnel, tunnel.Service, Snapshots.Request(method, path, headers)).Allowed;
    }

    private static readonly string DenyAdmin = Policy("deny-admin", "DENY", ToGateway, """
          - to: [{operation: {paths: ["/admin*"]}}]
          - to: [{operation: {methods: [DELETE], notPaths: ["/tmp/*"]}}]
        """);

    [Theory]
    [InlineData("GET", "/admin", false)]
    [InlineData("GET", "/admin/users", false)]
    [InlineData("GET", "/public", true)]
    [InlineData("DELETE", "/x", false)]
    [InlineData("DELETE", "/tmp/x", true)]
    public void DenyRulesMatchPathsAndMethods(string method, string path, bool allowed) =>
        Assert.Equal(allowed, Allowed(DenyAdmin, method, path));

    private static readonly string AllowClient = Policy("allow-client", "ALLOW", ToEcho, """
          - from: [{source: {principals: ["cluster.local/ns/shop/sa/client"]}}]
            to: [{operation: {methods: [GET, HEAD], paths: ["/api/*", "*.json", "/"]}}]
          - from: [{source: {namespaces: [ops]}}]
          - when: [{key: "request.headers[x-user]", values: [alice, "bob*"]}]
        """);

    [Theory]
    [InlineData("client", "shop", "GET", "/api/x", true)]
    [InlineData("client", "shop", "GET", "/data.json", true)] // suffix
    [InlineData("client", "shop", "GET", "/", true)]
    [InlineData("client", "shop", "POST", "/api/x", false)]
    [InlineData("client", "shop", "GET", "/other", false)]
    [InlineData("intruder", "shop", "GET", "/api/x", false)]
    [InlineData("anyone", "ops", "POST", "/anything", true)]
    [InlineData("intruder", "shop", "POST", "/x", true, "x-user: bob-the-builder")] // prefix on a header value
    [InlineData("intruder", "shop", "POST", "/x", false, "x-user: mallory")]
    public void AllowNeedsOneMatchingRule(string sa, string ns, string method, string path, bool allowed, params string[] headers) =>
        Assert.Equal(allowed, Allowed(AllowClient, method, path, sa, ns, headers));

    [Fact]
    public void DenyIsEvaluatedBeforeAllowAndPoliciesForOtherTargetsDoNotApply()
    {
        string both = DenyAdmin + "\n---\n" + Policy("allow-all", "ALLOW", ToEcho, "  - {}");
        Assert.False(Allowed(both, "GET", "/admin"));
        Assert.True(Allowed(both, "GET", "/shop"));
        // An ALLOW for another service leaves this one with no ALLOW policy: allowed.
        Assert.True(Allowed(Policy("only-other", "ALLOW", ToOther, "  - from: [{source: {namespaces: [nobody]}}]"), "GET", "/"));
        // With no policy at all: allowed.
        Assert.True(Allowed("", "GET", "/"));
    }

    [Fact]
    public void AllowWithNoRulesAllowsNothingAndAuditNeverDecides()
    {
        string empty = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: nothing, namespace: shop}
            spec:
              targetRefs: [{kind: Service, group: "", name: echo}]
            """;
        Assert.False(Allowed(empty, "GET", "/"));
        Assert.True(Allowed(Policy("audit", "AUDIT", ToEcho, "  - to: [{operation: {paths: [\"/*\"]}}]"), "GET", "/x"));
    }

    [Theory]
    [InlineData("[\"shop/client\"]", "client", true)]
    [InlineData("[\"client\"]", "client", true)] // a bare name is in the policy's namespace
    [InlineData("[\"other/client\"]", "client", false)]
    public void ServiceAccountsAreNamespaced(string accounts, string sa, bool allowed) =>
        Assert.Equal(allowed, Allowed(Policy("sa", "ALLOW", ToGateway, $"  - from: [{{source: {{serviceAccounts: {accounts}}}}}]"), "GET", "/", sa));

    [Fact]
    public void WhenConditionsSeeSourceAndDestination()
    {
        string p = Policy("when", "DENY", ToGateway, """
              - when:
                - {key: destination.port, values: ["80"]}
                - {key: source.ip, notValues: ["10.0.3.9"]}
            """);
        Assert.False(Allowed(p, "GET", "/")); // client 10.0.3.1 on port 80
        string q = Policy("when2", "DENY", ToGateway, "  - when: [{key: source.namespace, values: [ops]}]");
        Assert.True(Allowed(q, "GET", "/"));
        Assert.False(Allowed(q, "GET", "/", "x", "ops"));
    }

    [Fact]
    public void DryRunPoliciesAreReportedNotEnforced()
    {
        string p = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: trial, namespace: shop, annotations: {istio.io/dry-run: "true"}}
            spec:
              targetRefs: [{kind: Service, group: "", name: echo}]
              action: DENY
              rules: [{}]
            """;
        var snapshot = Snapshots.Build(p);
        var tunnel = Snapshots.Tunnel(snapshot);
        var d = L7Authorizer.Evaluate(snapshot, Snapshots.Waypoint, tunnel, tunnel.Service, Snapshots.Request("GET", "/"));
        Assert.True(d.Allowed);
        Assert.Equal(["shop/trial"], d.DryRun.ToArray());
    }
}
