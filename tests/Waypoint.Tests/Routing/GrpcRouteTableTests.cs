using Ambient.Waypoint.Routing;
using Ambient.Waypoint.Tests.Support;

namespace Ambient.Waypoint.Tests.Routing;

/// <summary>
/// Gateway API GRPCRoute (GAMMA: parentRefs to the Service), matched as Istio does: on the call path, in one table with
/// the Service's HTTPRoutes.
/// </summary>
public sealed class GrpcRouteTableTests
{
    private static string GrpcRoute(string rules, string name = "g") => $$"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: GRPCRoute
        metadata: {name: {{name}}, namespace: shop}
        spec:
          parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
          rules:
        {{rules}}
        """;

    private static string Decide(string manifests, string path, params string[] headers)
    {
        var snapshot = Snapshots.Build(manifests);
        var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request("POST", path, ["content-type: application/grpc", .. headers]));
        return d.Outcome switch
        {
            RouteOutcome.Forward => d.Backend!.Service.Name,
            RouteOutcome.NoRoute => "404 NR",
            _ => $"{d.Status}",
        };
    }

    private const string MethodRules = """
          - matches: [{method: {service: shop.Cart}}]
            backendRefs: [{name: echo-v1, port: 80}]
          - matches: [{method: {service: shop.Cart, method: Checkout}}]
            backendRefs: [{name: echo-v2, port: 80}]
          - matches: [{method: {method: Health}}]
            backendRefs: [{name: other, port: 80}]
          - matches: [{method: {type: RegularExpression, service: "shop\\.Pay.*", method: "Get.+"}}]
            backendRefs: [{name: echo-v2, port: 80}]
        """;

    [Theory]
    [InlineData("/shop.Cart/Add", "echo-v1")] // service only: every method of it
    [InlineData("/shop.Cart/Checkout", "echo-v2")] // service and method: an exact path, more specific
    [InlineData("/shop.CartX/Add", "404 NR")] // a service match is a whole path element
    [InlineData("/any.Thing/Health", "other")] // method only: any service
    [InlineData("/shop.Payments/GetBalance", "echo-v2")]
    [InlineData("/shop.Payments/Get", "404 NR")] // regular expressions match whole names
    [InlineData("/shop.Orders/List", "404 NR")]
    public void MethodMatchesFollowTheSpec(string path, string expected) =>
        Assert.Equal(expected, Decide(GrpcRoute(MethodRules), path));

    [Theory]
    [InlineData("echo-v2", "x-tenant: gold")]
    [InlineData("echo-v1", "x-tenant: silver")]
    [InlineData("echo-v1")]
    public void HeaderMatchesNarrowAMethodMatch(string expected, params string[] headers) =>
        Assert.Equal(expected, Decide(GrpcRoute("""
              - matches: [{method: {service: shop.Cart}, headers: [{name: x-tenant, value: gold}]}]
                backendRefs: [{name: echo-v2, port: 80}]
              - matches: [{method: {service: shop.Cart}}]
                backendRefs: [{name: echo-v1, port: 80}]
            """), "/shop.Cart/Add", headers));

    [Fact]
    public void GrpcRoutesAndHttpRoutesShareOneTableWithGatewayApiPrecedence()
    {
        string manifests = GrpcRoute("""
              - matches: [{method: {service: shop.Cart, method: Checkout}}]
                backendRefs: [{name: echo-v2, port: 80}]
              - matches: [{method: {service: shop.Cart}}]
                backendRefs: [{name: other, port: 80}]
            """) + """

            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: h, namespace: shop}
            spec:
              parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
              rules:
              - matches: [{path: {type: PathPrefix, value: /shop.Cart/Add}}]
                backendRefs: [{name: echo-v1, port: 80}]
              - backendRefs: [{name: echo-v1, port: 80}]
            """;
        Assert.Equal("echo-v2", Decide(manifests, "/shop.Cart/Checkout")); // exact path over every prefix
        Assert.Equal("echo-v1", Decide(manifests, "/shop.Cart/Add")); // the HTTPRoute's longer prefix
        Assert.Equal("other", Decide(manifests, "/shop.Cart/Remove")); // the GRPCRoute's service prefix over "/"
        Assert.Equal("echo-v1", Decide(manifests, "/shop.Other/X"));

        // A GRPCRoute on the Service also takes precedence over VirtualServices for its host, as an HTTPRoute does.
        var snapshot = Snapshots.Build(GrpcRoute("""
              - backendRefs: [{name: echo-v2, port: 80}]
            """) + """

            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs, namespace: shop}
            spec:
              hosts: [echo]
              http: [{route: [{destination: {host: echo-v1}}]}]
            """);
        var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request("POST", "/a.B/C"));
        Assert.Equal("echo-v2", d.Backend!.Service.Name);
        Assert.Equal("GRPCRoute/shop/g#0", d.RouteName);
    }

    [Fact]
    public void WeightedBackendRefsSplitCalls()
    {
        var snapshot = Snapshots.Build(GrpcRoute("""
              - backendRefs: [{name: echo-v1, port: 80, weight: 75}, {name: echo-v2, port: 80, weight: 25}, {name: other, port: 80, weight: 0}]
            """));
        var counts = new Dictionary<string, int>();
        for (int i = 0; i < 4000; i++)
        {
            var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request("POST", "/a.B/C"));
            counts[d.Backend!.Service.Name] = counts.GetValueOrDefault(d.Backend.Service.Name) + 1;
        }
        Assert.False(counts.ContainsKey("other"));
        Assert.InRange(counts["echo-v1"], 2700, 3300);
        Assert.InRange(counts["echo-v2"], 700, 1300);
    }
}
