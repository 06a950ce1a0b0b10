using Ambient.Mesh.Kubernetes;
using Ambient.Waypoint.Governance;
using Ambient.Waypoint.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Ambient.Waypoint.Tests.Governance;

/// <summary>
/// HTTPLocalRateLimitPolicy <c>targetRef</c> to a Linkerd Server: which requests the waypoint counts against it
/// (those for a service whose endpoints the Server selects, on the container port the service port leads to), and
/// the Server resources it refuses, with the field named.
/// </summary>
public sealed class RateLimitServerTargetTests
{
    private static string Server(string selector, string port) => $$"""
        apiVersion: policy.linkerd.io/v1beta3
        kind: Server
        metadata: {name: echo-http, namespace: shop}
        spec:
          podSelector: {{selector}}
          port: {{port}}
          proxyProtocol: HTTP/1
        ---
        apiVersion: policy.linkerd.io/v1alpha1
        kind: HTTPLocalRateLimitPolicy
        metadata: {name: echo-rl, namespace: shop}
        spec:
          targetRef: {group: policy.linkerd.io, kind: Server, name: echo-http}
          total: {requestsPerSecond: 5}
        """;

    [Theory]
    // Services echo (10.0.0.1) and other (10.0.0.4) both select app=echo, port 80 -> container port 8080.
    [InlineData("{matchLabels: {app: echo}}", "8080", "10.0.0.1", 80, true)]
    [InlineData("{matchLabels: {app: echo, version: v2}}", "8080", "10.0.0.1", 80, true)] // one endpoint is enough
    [InlineData("{matchLabels: {app: echo}}", "8080", "10.0.0.4", 80, true)]              // the same pods through another service
    [InlineData("{matchLabels: {app: echo}}", "9090", "10.0.0.1", 80, false)]             // another container port
    [InlineData("{matchLabels: {app: web}}", "8080", "10.0.0.1", 80, false)]              // other pods
    [InlineData("{matchLabels: {app: echo}}", "8080", "10.0.0.1", 81, false)]             // a port the service does not have leads nowhere
    public void AServerTargetLimitsTheServicesThatReachItsPodsAndPort(string selector, string port, string vip, int servicePort, bool limited)
    {
        var snapshot = Snapshots.Build(Server(selector, port));
        var service = snapshot.FindServiceByVip(System.Net.IPAddress.Parse(vip))!;
        var state = new GovernanceState(new FakeTimeProvider());
        var limiters = state.LimitersFor(snapshot, service, servicePort);
        if (limited)
        {
            Assert.Equal("echo-rl", Assert.Single(limiters).Policy.Name);
        }
        else
        {
            Assert.Empty(limiters);
        }
    }

    [Theory]
    [InlineData("{matchLabels: {app: echo}}", "http", "port: a named port is not supported yet")]
    [InlineData("{matchExpressions: [{key: app, operator: In, values: [echo]}]}", "8080", "podSelector.matchExpressions: matchExpressions is not supported yet")]
    [InlineData("{matchLabels: {app: echo}}", "70000", "port")]
    public void UnsupportedServersAreRefusedWithTheFieldNamed(string selector, string port, string error)
    {
        var read = ManifestReader.Parse(Snapshots.Base + "\n---\n" + Server(selector, port), "test.yaml");
        Assert.True(read.Ok, string.Join("\n", read.Errors));
        var translated = new KubeTranslator(new KubeTranslatorOptions { TrustDomain = "cluster.local" }).Translate(read.Objects);
        var e = Assert.Single(translated.Errors, e => e.ToString().Contains("echo-http", StringComparison.Ordinal));
        Assert.Contains(error, e.ToString(), StringComparison.Ordinal);
    }
}
