using Ambient.Waypoint.Routing;
using Ambient.Waypoint.Tests.Support;

namespace Ambient.Waypoint.Tests.Routing;

/// <summary>Gateway API HTTPRoute (GAMMA: parentRefs to the Service) matching and filters, as the spec defines them.</summary>
public sealed class HttpRouteTableTests
{
    private static string Route(string rules, string name = "r") => $$"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: {{name}}, namespace: shop}
        spec:
          parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
          rules:
        {{rules}}
        """;

    /// <summary>Which backend Service (or outcome) a request gets.</summary>
    private static string Decide(string manifests, string method, string path, params string[] headers)
    {
        var snapshot = Snapshots.Build(manifests);
        var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request(method, path, headers));
        return d.Outcome switch
        {
            RouteOutcome.Forward => d.Backend!.Service.Name,
            RouteOutcome.NoRoute => "404 NR",
            _ => $"{d.Status}",
        };
    }

    private const string PathRules = """
          - matches: [{path: {type: PathPrefix, value: /api}}]
            backendRefs: [{name: echo-v1, port: 80}]
          - matches: [{path: {type: Exact, value: /api/v2}}]
            backendRefs: [{name: echo-v2, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /api/admin/}}]
            backendRefs: [{name: other, port: 80}]
          - matches: [{path: {type: RegularExpression, value: "/img/[0-9]+\\.png"}}]
            backendRefs: [{name: echo-v2, port: 80}]
        """;

    [Theory]
    [InlineData("/api", "echo-v1")]
    [InlineData("/api/", "echo-v1")]
    [InlineData("/api/v1", "echo-v1")]
    [InlineData("/api/v2", "echo-v2")] // Exact beats any prefix
    [InlineData("/api/v2/x", "echo-v1")]
    [InlineData("/api/admin", "other")] // the longer prefix wins; its trailing "/" is ignored
    [InlineData("/api/admin/users", "other")]
    [InlineData("/apix", "404 NR")] // a prefix matches whole path elements only
    [InlineData("/", "404 NR")]
    [InlineData("/img/12.png", "echo-v2")]
    [InlineData("/img/x.png", "404 NR")] // regular expressions match the whole path
    public void PathMatchesFollowTheSpec(string path, string expected) =>
        Assert.Equal(expected, Decide(Route(PathRules), "GET", path));

    private const string HeaderQueryMethodRules = """
          - matches:
            - headers: [{name: X-Version, value: v2}]
            backendRefs: [{name: echo-v2, port: 80}]
          - matches:
            - queryParams: [{name: debug, value: "1"}]
            backendRefs: [{name: other, port: 80}]
          - matches:
            - method: POST
              headers: [{type: RegularExpression, name: x-user, value: "adm.*"}]
            backendRefs: [{name: other, port: 80}]
          - backendRefs: [{name: echo-v1, port: 80}]
        """;

    [Theory]
    [InlineData("GET", "/", "echo-v1")]
    [InlineData("GET", "/", "echo-v2", "x-version: v2")] // header names compare case-insensitively
    [InlineData("GET", "/", "echo-v1", "x-version: V2")] // values exactly
    [InlineData("GET", "/?debug=1", "other")]
    [InlineData("GET", "/?debug=10", "echo-v1")]
    [InlineData("GET", "/?Debug=1", "echo-v1")] // query names compare exactly
    [InlineData("POST", "/", "other", "x-user: admin")]
    [InlineData("GET", "/", "echo-v1", "x-user: admin")] // every part of a match must hold
    [InlineData("POST", "/", "echo-v1", "x-user: bob")]
    public void HeaderQueryAndMethodMatches(string method, string path, string expected, params string[] headers) =>
        Assert.Equal(expected, Decide(Route(HeaderQueryMethodRules), method, path, headers));

    [Fact]
    public void AMoreSpecificMatchWinsAcrossRoutesAndTiesGoToTheFirstRoute()
    {
        string twoRoutes = Route("""
              - matches: [{path: {type: PathPrefix, value: /a}}]
                backendRefs: [{name: echo-v1, port: 80}]
            """, "a-route") + "\n---\n" + Route("""
              - matches: [{path: {type: PathPrefix, value: /a}, method: GET}]
                backendRefs: [{name: echo-v2, port: 80}]
              - matches: [{path: {type: PathPrefix, value: /a}}]
                backendRefs: [{name: other, port: 80}]
            """, "b-route");
        Assert.Equal("echo-v2", Decide(twoRoutes, "GET", "/a/x")); // a method match beats none
        Assert.Equal("echo-v1", Decide(twoRoutes, "PUT", "/a/x")); // equal matches: the route first by name
    }

    [Fact]
    public void RedirectAnswersWithLocationAndStatus()
    {
        var snapshot = Snapshots.Build(Route("""
              - matches: [{path: {type: PathPrefix, value: /old}}]
                filters:
                - type: RequestRedirect
                  requestRedirect: {scheme: https, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
            """));
        var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request("GET", "/old/page?x=1"));
        Assert.Equal(RouteOutcome.Respond, d.Outcome);
        Assert.Equal(301, d.Status);
        Assert.Equal("https://echo.shop/new/page?x=1", d.Location);
    }

    [Theory]
    [InlineData("ReplacePrefixMatch", "/v2", "/api/users", "/v2/users")]
    [InlineData("ReplacePrefixMatch", "/v2/", "/api/users", "/v2/users")]
    [InlineData("ReplacePrefixMatch", "/", "/api/users", "/users")]
    [InlineData("ReplacePrefixMatch", "/v2", "/api", "/v2")]
    [InlineData("ReplaceFullPath", "/fixed", "/api/users", "/fixed")]
    public void UrlRewriteChangesThePathAndHost(string type, string value, string path, string expected)
    {
        string field = type == "ReplaceFullPath" ? "replaceFullPath" : "replacePrefixMatch";
        var snapshot = Snapshots.Build(Route($$$"""
              - matches: [{path: {type: PathPrefix, value: /api}}]
                filters:
                - type: URLRewrite
                  urlRewrite: {hostname: internal.shop, path: {type: {{{type}}}, {{{field}}}: "{{{value}}}"}}
                backendRefs: [{name: echo-v1, port: 80}]
            """));
        var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request("GET", path));
        Assert.Equal(RouteOutcome.Forward, d.Outcome);
        Assert.Equal(expected, d.Path);
        Assert.Equal("internal.shop", d.Host);
    }

    [Fact]
    public void HeaderModifiersAreCarriedInOrder()
    {
        var snapshot = Snapshots.Build(Route("""
              - filters:
                - type: RequestHeaderModifier
                  requestHeaderModifier: {set: [{name: x-a, value: "1"}], add: [{name: x-b, value: "2"}], remove: [x-c]}
                - type: ResponseHeaderModifier
                  responseHeaderModifier: {add: [{name: x-served-by, value: waypoint}]}
                backendRefs: [{name: echo-v1, port: 80}]
            """));
        var d = Router.Route(snapshot, Snapshots.Tunnel(snapshot), Snapshots.Request("GET", "/"));
        Assert.Equal([KeyValuePair.Create("x-a", "1")], d.RequestHeaders.Set.ToArray());
        Assert.Equal([KeyValuePair.Create("x-b", "2")], d.RequestHeaders.Add.ToArray());
        Assert.Equal(["x-c"], d.RequestHeaders.Remove.ToArray());
        Assert.Equal([KeyValuePair.Create("x-served-by", "waypoint")], d.ResponseHeaders.Add.ToArray());
    }

    [Fact]
    public void WeightsSplitTrafficAndAllZeroWeightsAnswer500()
    {
        var snapshot = Snapshots.Build(Route("""
              - backendRefs: [{name: echo-v1, port: 80, weight: 80}, {name: echo-v2, port: 80, weight: 20}, {name: other, port: 80, weight: 0}]
            """));
        var tunnel = Snapshots.Tunnel(snapshot);
        var counts = new Dictionary<string, int>();
        for (int i = 0; i < 2000; i++)
        {
            string name = Router.Route(snapshot, tunnel, Snapshots.Request("GET", "/")).Backend!.Service.Name;
            counts[name] = counts.GetValueOrDefault(name) + 1;
        }
        Assert.False(counts.ContainsKey("other"));
        Assert.InRange(counts["echo-v2"], 300, 500); // 20% of 2000 = 400; the bounds are over 5 standard deviations wide

        var zero = Snapshots.Build(Route("""
              - backendRefs: [{name: echo-v1, port: 80, weight: 0}, {name: echo-v2, port: 80, weight: 0}]
            """));
        var d = Router.Route(zero, Snapshots.Tunnel(zero), Snapshots.Request("GET", "/"));
        Assert.Equal((RouteOutcome.Respond, 500), (d.Outcome, d.Status));
    }

    [Fact]
    public void MissingBackendServiceAnswers500AndARouteForAnotherPortDoesNotApply()
    {
        Assert.Equal("500", Decide(Route("""
              - backendRefs: [{name: ghost, port: 80}]
            """), "GET", "/"));
        string otherPort = Route("""
              - backendRefs: [{name: echo-v2, port: 80}]
            """).Replace("port: 80}]\n  rules", "port: 8080}]\n  rules", StringComparison.Ordinal);
        Assert.Equal("echo", Decide(otherPort, "GET", "/")); // no route for port 80: the service itself
    }

    [Fact]
    public void HttpRouteWinsOverVirtualServiceForTheSameService()
    {
        string vs = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs, namespace: shop}
            spec:
              hosts: [echo]
              http:
              - route: [{destination: {host: echo-v2}}]
            """;
        Assert.Equal("echo-v2", Decide(vs, "GET", "/"));
        Assert.Equal("echo-v1", Decide(vs + "\n---\n" + Route("""
              - backendRefs: [{name: echo-v1, port: 80}]
            """), "GET", "/"));
    }
}
