using Ambient.Mesh.Model;
using Ambient.Waypoint.Routing;
using Ambient.Waypoint.Tests.Support;

namespace Ambient.Waypoint.Tests.Routing;

/// <summary>Istio VirtualService http routes with DestinationRule subsets and load balancing.</summary>
public sealed class VirtualServiceTableTests
{
    private const string Reviews = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: echo, namespace: shop}
        spec:
          hosts: [echo.shop.svc.cluster.local]
          http:
          - name: jason
            match: [{headers: {end-user: {exact: jason}}}]
            route: [{destination: {host: echo, subset: v2}}]
          - name: api
            match: [{uri: {prefix: /api/}}, {uri: {regex: "/legacy/.*"}}]
            rewrite: {uri: /v1/}
            route: [{destination: {host: echo, subset: v1}}]
          - name: moved
            match: [{uri: {exact: /old}}]
            redirect: {uri: /new, redirectCode: 308}
          - name: beta
            match: [{queryParams: {beta: {exact: "yes"}}, withoutHeaders: {x-no-beta: {}}}]
            route: [{destination: {host: echo, subset: v2}}]
          - name: rest
            match: [{method: {exact: GET}}]
            route: [{destination: {host: echo, subset: v1}, weight: 100}, {destination: {host: echo, subset: v2}, weight: 0}]
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: echo, namespace: shop}
        spec:
          host: echo
          subsets:
          - {name: v1, labels: {version: v1}}
          - name: v2
            labels: {version: v2}
        """;

    [Theory]
    [InlineData("GET", "/", "jason", "v2", "end-user: jason")]
    [InlineData("GET", "/api/users", "api", "v1")]
    [InlineData("GET", "/legacy/x", "api", "v1")]
    [InlineData("GET", "/?beta=yes", "beta", "v2")]
    [InlineData("GET", "/?beta=yes", "rest", "v1", "x-no-beta: 1")]
    [InlineData("GET", "/x", "rest", "v1")]
    [InlineData("POST", "/x", "404 NR", null)]
    public void FirstMatchingRouteWinsWithItsSubset(string method, string path, string route, string? subset, params string[] headers)
    {
        var snapshot = Snapshots.Build(Reviews);
        var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request(method, path, headers));
        if (subset is null)
        {
            Assert.Equal(RouteOutcome.NoRoute, d.Outcome);
            return;
        }
        Assert.Equal(RouteOutcome.Forward, d.Outcome);
        Assert.EndsWith("#" + route, d.RouteName);
        Assert.Equal(subset, d.Backend!.Subset);
        Assert.Equal(subset, d.Backend.SubsetLabels!["version"]);
        // The subset narrows the endpoints to the pods with its labels.
        var picked = new EndpointPicker().Pick(snapshot, d.Backend, Snapshots.Request(method, path), System.Net.IPAddress.Loopback);
        Assert.Equal($"echo-{subset}", picked!.Value.Workload.Name);
        Assert.Equal(8080, picked.Value.Port);
    }

    [Fact]
    public void RewriteReplacesTheMatchedPrefixAndRedirectAnswers()
    {
        var snapshot = Snapshots.Build(Reviews);
        var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request("GET", "/api/users"));
        Assert.Equal("/v1/users", d.Path);
        var r = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request("GET", "/old"));
        Assert.Equal((RouteOutcome.Respond, 308, "http://echo.shop/new"), (r.Outcome, r.Status, r.Location));
    }

    [Fact]
    public void AnUndefinedSubsetAnswers503()
    {
        var snapshot = Snapshots.Build(Reviews.Replace("subset: v2}}]\n  - name: api", "subset: v9}}]\n  - name: api", StringComparison.Ordinal));
        var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request("GET", "/", "end-user: jason"));
        Assert.Equal((RouteOutcome.Respond, 503), (d.Outcome, d.Status));
    }

    private static string Lb(string policy) => $$"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: echo, namespace: shop}
        spec:
          host: echo.shop.svc.cluster.local
          trafficPolicy:
            loadBalancer: {{policy}}
        """;

    private static List<string> Picks(string policy, int n, Func<int, string[]> headers)
    {
        var snapshot = Snapshots.Build(Lb(policy));
        var service = snapshot.FindServiceByVip(System.Net.IPAddress.Parse("10.0.0.1"))!;
        var picker = new EndpointPicker();
        var result = new List<string>();
        for (int i = 0; i < n; i++)
        {
            var p = picker.Pick(snapshot, new Backend(service, 80, null, null), Snapshots.Request("GET", "/", headers(i)), System.Net.IPAddress.Parse("10.0.3.1"))!.Value;
            p.Load?.Release();
            result.Add(p.Workload.Name);
        }
        return result;
    }

    [Fact]
    public void RoundRobinAlternates()
    {
        var picks = Picks("{simple: ROUND_ROBIN}", 6, _ => []);
        for (int i = 1; i < picks.Count; i++)
        {
            Assert.NotEqual(picks[i - 1], picks[i]);
        }
    }

    [Fact]
    public void ConsistentHashKeepsAKeyOnOneEndpointAndSpreadsKeys()
    {
        var same = Picks("{consistentHash: {httpHeaderName: x-user}}", 20, _ => ["x-user: alice"]);
        Assert.Single(same.Distinct());
        var spread = Picks("{consistentHash: {httpHeaderName: x-user}}", 40, i => [$"x-user: user{i}"]);
        Assert.Equal(2, spread.Distinct().Count());
    }

    [Fact]
    public void LeastRequestPrefersTheIdleEndpoint()
    {
        var snapshot = Snapshots.Build("");
        var service = snapshot.FindServiceByVip(System.Net.IPAddress.Parse("10.0.0.1"))!;
        var picker = new EndpointPicker();
        var backend = new Backend(service, 80, null, null);
        // Hold one request on whichever endpoint comes first; with two endpoints both are always compared, so
        // every next pick goes to the other one while the first stays busy.
        var busy = picker.Pick(snapshot, backend, Snapshots.Request("GET", "/"), System.Net.IPAddress.Loopback)!.Value;
        for (int i = 0; i < 10; i++)
        {
            var p = picker.Pick(snapshot, backend, Snapshots.Request("GET", "/"), System.Net.IPAddress.Loopback)!.Value;
            Assert.NotEqual(busy.Workload.Uid, p.Workload.Uid);
            p.Load?.Release();
        }
        busy.Load?.Release();
        Assert.Equal(HealthStatus.Healthy, busy.Workload.Status);
    }
}
