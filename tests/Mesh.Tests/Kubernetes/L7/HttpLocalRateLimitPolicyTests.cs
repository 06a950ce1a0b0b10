using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

public sealed class HttpLocalRateLimitPolicyTests
{
    internal const string Full = """
        apiVersion: policy.linkerd.io/v1alpha1
        kind: HTTPLocalRateLimitPolicy
        metadata:
          name: web-rl
          namespace: emojivoto
        spec:
          targetRef:
            group: ""
            kind: Service
            name: web-svc
          total:
            requestsPerSecond: 100
          identity:
            requestsPerSecond: 20
          overrides:
          - requestsPerSecond: 50
            clientRefs:
            - kind: ServiceAccount
              name: special-client
            - kind: ServiceAccount
              name: batch
              namespace: jobs
        """;

    [Fact]
    public void FullManifestParsesIntoTheRecord()
    {
        HttpLocalRateLimitPolicy p = L7Manifest.Valid<HttpLocalRateLimitPolicy>(Full);
        Assert.Equal("HTTPLocalRateLimitPolicy/emojivoto/web-rl", p.Key);
        Assert.Equal(new RateLimitTarget("", "Service", "web-svc"), p.TargetRef);
        Assert.True(p.TargetRef.IsService);
        Assert.Equal(100u, p.TotalRequestsPerSecond);
        Assert.Equal(20u, p.IdentityRequestsPerSecond);
        RateLimitOverride o = Assert.Single(p.Overrides);
        Assert.Equal(50u, o.RequestsPerSecond);
        Assert.Equal<RateLimitClientRef>([new RateLimitClientRef("special-client", null), new RateLimitClientRef("batch", "jobs")], o.ClientRefs);
    }

    [Fact]
    public void PerClientLimitPrefersTheOverrideNamingTheClient()
    {
        HttpLocalRateLimitPolicy p = L7Manifest.Valid<HttpLocalRateLimitPolicy>(Full);
        Assert.Equal(50u, p.PerClientLimit("emojivoto", "special-client")); // namespace defaults to the policy's
        Assert.Equal(20u, p.PerClientLimit("other", "special-client"));
        Assert.Equal(50u, p.PerClientLimit("jobs", "batch"));
        Assert.Equal(20u, p.PerClientLimit("emojivoto", "web"));
    }

    [Fact]
    public void LinkerdServerTargetAndOnlyATotal()
    {
        HttpLocalRateLimitPolicy p = L7Manifest.Valid<HttpLocalRateLimitPolicy>("""
            apiVersion: policy.linkerd.io/v1alpha1
            kind: HTTPLocalRateLimitPolicy
            metadata:
              name: server-rl
            spec:
              targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
              total: {requestsPerSecond: 5}
            """);
        Assert.True(p.TargetRef.IsServer);
        Assert.Equal(5u, p.TotalRequestsPerSecond);
        Assert.Null(p.IdentityRequestsPerSecond);
        Assert.Empty(p.Overrides);
        Assert.Null(p.PerClientLimit("default", "anyone"));
    }

    private const string Head = """
        apiVersion: policy.linkerd.io/v1alpha1
        kind: HTTPLocalRateLimitPolicy
        metadata:
          name: bad
        spec:
          targetRef: {kind: Service, name: web}

        """;

    // Each case: the spec body after targetRef (starting on line 7), the field and line of the expected error, part of its message.
    public static TheoryData<string, string, string, int, string> BadInputs() => new()
    {
        { "negative total", "  total: {requestsPerSecond: -10}\n", "spec.total.requestsPerSecond", 7, "negative" },
        { "zero identity", "  identity: {requestsPerSecond: 0}\n", "spec.identity.requestsPerSecond", 7, "must be greater than 0" },
        { "rate not a number", "  total: {requestsPerSecond: lots}\n", "spec.total.requestsPerSecond", 7, "not an integer" },
        { "rate too large", "  total: {requestsPerSecond: 5000000000}\n", "spec.total.requestsPerSecond", 7, "out of range" },
        { "unknown field", "  totals: {requestsPerSecond: 10}\n", "spec.totals", 7, "did you mean 'total'" },
        { "unknown limit field", "  total: {requestsPerSec: 10}\n", "spec.total.requestsPerSec", 7, "unknown field" },
        { "missing rate", "  identity: {}\n", "spec.identity.requestsPerSecond", 7, "required" },
        { "identity above total", "  total: {requestsPerSecond: 10}\n  identity: {requestsPerSecond: 20}\n",
            "spec.identity.requestsPerSecond", 8, "must be less than or equal to total.requestsPerSecond (10)" },
        { "override above total", "  total: {requestsPerSecond: 10}\n  overrides:\n  - requestsPerSecond: 11\n    clientRefs: [{kind: ServiceAccount, name: a}]\n",
            "spec.overrides[0].requestsPerSecond", 9, "must be less than or equal to total.requestsPerSecond" },
        { "negative override", "  overrides:\n  - requestsPerSecond: -1\n    clientRefs: [{kind: ServiceAccount, name: a}]\n",
            "spec.overrides[0].requestsPerSecond", 8, "negative" },
        { "override without clients", "  overrides:\n  - requestsPerSecond: 1\n", "spec.overrides[0].clientRefs", 8, "required" },
        { "client not a service account", "  overrides:\n  - requestsPerSecond: 1\n    clientRefs: [{kind: Deployment, name: a}]\n",
            "spec.overrides[0].clientRefs[0].kind", 9, "must name a ServiceAccount" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputIsRefusedWithFieldAndLine(string name, string body, string field, int line, string message)
    {
        Assert.NotEmpty(name);
        L7Manifest.Refused(Head + body, field, line, message);
    }

    [Fact]
    public void TargetMustBeAServiceOrServer() => L7Manifest.Refused("""
        apiVersion: policy.linkerd.io/v1alpha1
        kind: HTTPLocalRateLimitPolicy
        metadata:
          name: bad
        spec:
          targetRef: {group: apps, kind: Deployment, name: web}
        """, "spec.targetRef", 6, "must be a Service");

    [Fact]
    public void TargetIsRequired() => L7Manifest.Refused("""
        apiVersion: policy.linkerd.io/v1alpha1
        kind: HTTPLocalRateLimitPolicy
        metadata:
          name: bad
        spec:
          total: {requestsPerSecond: 1}
        """, "spec.targetRef", 6, "required");
}
