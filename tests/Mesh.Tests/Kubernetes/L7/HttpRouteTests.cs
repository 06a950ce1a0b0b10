using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

public sealed class HttpRouteTests
{
    // A GAMMA route as a user writes one for a waypoint: parents are Services, every filter kind in use.
    internal const string Full = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          name: reviews
          namespace: bookinfo
        spec:
          parentRefs:
          - group: ""
            kind: Service
            name: reviews
            port: 9080
          hostnames: ["reviews.bookinfo.svc.cluster.local", "*.example.com"]
          rules:
          - name: v2-for-jason
            matches:
            - path:
                type: PathPrefix
                value: /reviews
              headers:
              - name: end-user
                value: jason
              - type: RegularExpression
                name: x-canary
                value: "^(yes|true)$"
              queryParams:
              - name: debug
                value: "1"
              method: GET
            filters:
            - type: RequestHeaderModifier
              requestHeaderModifier:
                set: [{name: x-route, value: v2}]
                add: [{name: x-trace, value: "on"}]
                remove: [x-internal]
            - type: ResponseHeaderModifier
              responseHeaderModifier:
                remove: [server]
            - type: RequestMirror
              requestMirror:
                backendRef: {name: reviews-shadow, port: 9080}
                fraction: {numerator: 1, denominator: 4}
            - type: URLRewrite
              urlRewrite:
                hostname: reviews-v2.bookinfo.svc.cluster.local
                path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2/reviews}
            backendRefs:
            - name: reviews-v2
              port: 9080
              weight: 90
            - name: reviews-v3
              namespace: canary
              port: 9080
              weight: 10
              filters:
              - type: RequestHeaderModifier
                requestHeaderModifier:
                  set: [{name: x-canary, value: "true"}]
            timeouts:
              request: 10s
              backendRequest: 2500ms
            retry:
              attempts: 3
              codes: [502, 503]
              backoff: 100ms
            sessionPersistence:
              sessionName: reviews-session
              type: Cookie
              absoluteTimeout: 1h
              cookieConfig: {lifetimeType: Permanent}
          - matches:
            - path: {type: Exact, value: /old}
            filters:
            - type: RequestRedirect
              requestRedirect:
                scheme: https
                hostname: new.example.com
                path: {type: ReplaceFullPath, replaceFullPath: /new}
                port: 8443
                statusCode: 301
          - matches:
            - path: {type: RegularExpression, value: "/api/v[0-9]+/.*"}
            filters:
            - type: CORS
              cors:
                allowOrigins: ["https://*.example.com"]
                allowMethods: [GET, POST]
                allowHeaders: [x-token]
                exposeHeaders: [x-request-id]
                allowCredentials: true
                maxAge: 600
            - type: ExtensionRef
              extensionRef: {group: example.io, kind: Limiter, name: strict}
            backendRefs:
            - name: reviews-v1
              port: 9080
        """;

    [Fact]
    public void FullManifestParsesIntoTheRecord()
    {
        HttpRoute route = L7Manifest.Valid<HttpRoute>(Full);
        Assert.Equal("bookinfo", route.Namespace);
        Assert.Equal("reviews", route.Name);
        Assert.Equal("HTTPRoute/bookinfo/reviews", route.Key);

        ParentReference parent = Assert.Single(route.ParentRefs);
        Assert.Equal(new ParentReference("", "Service", null, "reviews", null, 9080), parent);
        Assert.True(parent.IsService);
        Assert.Equal<string>(["reviews.bookinfo.svc.cluster.local", "*.example.com"], route.Hostnames);
        Assert.Equal(3, route.Rules.Length);

        HttpRouteRule r0 = route.Rules[0];
        Assert.Equal("v2-for-jason", r0.Name);
        HttpRouteMatch m = Assert.Single(r0.Matches);
        Assert.Equal(new HttpPathMatch(PathMatchType.PathPrefix, "/reviews", null), m.Path);
        Assert.Equal("GET", m.Method);
        Assert.Equal(2, m.Headers.Length);
        Assert.Equal(new HeaderMatch(ValueMatchType.Exact, "end-user", "jason", null), m.Headers[0]);
        Assert.Equal(ValueMatchType.RegularExpression, m.Headers[1].Type);
        Assert.True(m.Headers[1].Regex!.IsMatch("yes"));
        Assert.False(m.Headers[1].Regex!.IsMatch("yes please"));
        Assert.Equal(new QueryParamMatch(ValueMatchType.Exact, "debug", "1", null), Assert.Single(m.QueryParams));

        Assert.Equal(4, r0.Filters.Length);
        var req = Assert.IsType<RequestHeaderModifierFilter>(r0.Filters[0]);
        Assert.Equal<HttpHeader>([new HttpHeader("x-route", "v2")], req.Modifier.Set);
        Assert.Equal<HttpHeader>([new HttpHeader("x-trace", "on")], req.Modifier.Add);
        Assert.Equal<string>(["x-internal"], req.Modifier.Remove);
        Assert.Equal<string>(["server"], Assert.IsType<ResponseHeaderModifierFilter>(r0.Filters[1]).Modifier.Remove);
        var mirror = Assert.IsType<RequestMirrorFilter>(r0.Filters[2]);
        Assert.Equal(new BackendObjectReference("", "Service", "reviews-shadow", null, 9080), mirror.Backend);
        Assert.Equal(new MirrorFraction(1, 4), mirror.Fraction);
        Assert.Equal(0.25, mirror.Share);
        var rewrite = Assert.IsType<UrlRewriteFilter>(r0.Filters[3]);
        Assert.Equal("reviews-v2.bookinfo.svc.cluster.local", rewrite.Hostname);
        Assert.Equal(new PathModifier(PathModifierType.ReplacePrefixMatch, "/v2/reviews"), rewrite.Path);

        Assert.Equal(2, r0.BackendRefs.Length);
        Assert.Equal(new BackendObjectReference("", "Service", "reviews-v2", null, 9080), r0.BackendRefs[0].Backend);
        Assert.Equal(90, r0.BackendRefs[0].Weight);
        Assert.Equal("canary", r0.BackendRefs[1].Backend.Namespace);
        Assert.Equal(10, r0.BackendRefs[1].Weight);
        var backendFilter = Assert.IsType<RequestHeaderModifierFilter>(Assert.Single(r0.BackendRefs[1].Filters));
        Assert.Equal<HttpHeader>([new HttpHeader("x-canary", "true")], backendFilter.Modifier.Set);

        Assert.Equal(new HttpRouteTimeouts(TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(2500)), r0.Timeouts);
        Assert.Equal(3, r0.Retry!.Attempts);
        Assert.Equal<int>([502, 503], r0.Retry.Codes);
        Assert.Equal(TimeSpan.FromMilliseconds(100), r0.Retry.Backoff);
        Assert.Equal(new SessionPersistence(SessionPersistenceType.Cookie, "reviews-session", TimeSpan.FromHours(1), null,
            CookieLifetimeType.Permanent, null), r0.SessionPersistence);

        HttpRouteRule r1 = route.Rules[1];
        Assert.Equal(PathMatchType.Exact, r1.Matches[0].Path.Type);
        Assert.Empty(r1.BackendRefs);
        var redirect = Assert.IsType<RequestRedirectFilter>(Assert.Single(r1.Filters));
        Assert.Equal(new RequestRedirectFilter("https", "new.example.com", new PathModifier(PathModifierType.ReplaceFullPath, "/new"), 8443, 301), redirect);

        HttpRouteRule r2 = route.Rules[2];
        HttpPathMatch regexPath = r2.Matches[0].Path;
        Assert.Equal(PathMatchType.RegularExpression, regexPath.Type);
        Assert.True(regexPath.Regex!.IsMatch("/api/v2/ratings"));
        Assert.False(regexPath.Regex.IsMatch("/api/vX/ratings"));
        var cors = Assert.IsType<CorsFilter>(r2.Filters[0]);
        Assert.Equal<string>(["https://*.example.com"], cors.AllowOrigins);
        Assert.Equal<string>(["GET", "POST"], cors.AllowMethods);
        Assert.Equal<string>(["x-token"], cors.AllowHeaders);
        Assert.Equal<string>(["x-request-id"], cors.ExposeHeaders);
        Assert.True(cors.AllowCredentials);
        Assert.Equal(600, cors.MaxAgeSeconds);
        Assert.Equal(new LocalObjectReference("example.io", "Limiter", "strict"), Assert.IsType<ExtensionRefFilter>(r2.Filters[1]).Ref);
        Assert.Equal(1, Assert.Single(r2.BackendRefs).Weight);
    }

    [Fact]
    public void DefaultsAreThoseTheApiServerWrites()
    {
        HttpRoute route = L7Manifest.Valid<HttpRoute>("""
            apiVersion: gateway.networking.k8s.io/v1beta1
            kind: HTTPRoute
            metadata:
              name: minimal
            spec:
              parentRefs:
              - name: waypoint
            """);
        Assert.Equal(new ParentReference("gateway.networking.k8s.io", "Gateway", null, "waypoint", null, null), Assert.Single(route.ParentRefs));
        Assert.Empty(route.Hostnames);
        HttpRouteRule rule = Assert.Single(route.Rules);
        Assert.Equal(HttpRouteMatch.Default, Assert.Single(rule.Matches));
        Assert.Equal(new HttpPathMatch(PathMatchType.PathPrefix, "/", null), rule.Matches[0].Path);
        Assert.Empty(rule.BackendRefs);
        Assert.Null(rule.Timeouts);
        Assert.Null(rule.Retry);
    }

    [Fact]
    public void OmittedFieldsInsideARuleTakeTheirDefaults()
    {
        HttpRoute route = L7Manifest.Valid<HttpRoute>("""
            apiVersion: gateway.networking.k8s.io/v1alpha2
            kind: HTTPRoute
            metadata:
              name: defaults
            spec:
              rules:
              - matches:
                - headers: [{name: x-a, value: b}]
                - path: {type: Exact}
                filters:
                - type: RequestRedirect
                  requestRedirect: {scheme: https}
                - type: RequestMirror
                  requestMirror: {backendRef: {name: shadow, port: 80}}
              - backendRefs: [{name: svc, port: 80}]
                retry: {codes: [503]}
            """);
        HttpRouteRule r0 = route.Rules[0];
        Assert.Equal(HttpPathMatch.Default, r0.Matches[0].Path);
        Assert.Equal(new HttpPathMatch(PathMatchType.Exact, "/", null), r0.Matches[1].Path);
        Assert.Equal(302, Assert.IsType<RequestRedirectFilter>(r0.Filters[0]).StatusCode);
        var mirror = Assert.IsType<RequestMirrorFilter>(r0.Filters[1]);
        Assert.Equal(1.0, mirror.Share);
        HttpRouteRule r1 = route.Rules[1];
        Assert.Equal(HttpRouteMatch.Default, Assert.Single(r1.Matches));
        Assert.Equal(1, Assert.Single(r1.BackendRefs).Weight);
        Assert.Null(r1.Retry!.Attempts);
        Assert.Equal(2, r1.Retry.EffectiveAttempts);
    }

    [Fact]
    public void HeaderNamesDifferingOnlyInCaseKeepTheFirstWithAWarning()
    {
        L7Manifest.Result r = L7Manifest.Parse("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata:
              name: r
            spec:
              rules:
              - matches:
                - headers:
                  - {name: X-Env, value: prod}
                  - {name: x-env, value: dev}
            """);
        Assert.Empty(r.Errors);
        HeaderMatch h = Assert.Single(Assert.IsType<HttpRoute>(r.Object).Rules[0].Matches[0].Headers);
        Assert.Equal("prod", h.Value);
        Assert.Contains(r.Warnings, w => w.Field == "spec.rules[0].matches[0].headers" && w.Message.Contains("only the first counts", StringComparison.Ordinal));
    }

    private const string Head = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          name: bad
        spec:

        """;

    // Each case: the spec body (starting on line 6), the field and line of the expected error, part of its message.
    public static TheoryData<string, string, string, int, string> BadInputs() => new()
    {
        { "unknown spec field", "  parentRef: []\n", "spec.parentRef", 6, "did you mean 'parentRefs'" },
        { "unknown rule field", "  rules:\n  - backendRef: []\n", "spec.rules[0].backendRef", 7, "did you mean 'backendRefs'" },
        { "unknown match field", "  rules:\n  - matches:\n    - paths: {}\n", "spec.rules[0].matches[0].paths", 8, "did you mean 'path'" },
        { "bad path type", "  rules:\n  - matches:\n    - path: {type: Prefix, value: /a}\n",
            "spec.rules[0].matches[0].path.type", 8, "'Prefix' is not one of: Exact, PathPrefix, RegularExpression" },
        { "enum is case-sensitive", "  rules:\n  - matches:\n    - path: {type: pathprefix}\n",
            "spec.rules[0].matches[0].path.type", 8, "'pathprefix' is not one of" },
        { "relative path", "  rules:\n  - matches:\n    - path: {value: api}\n", "spec.rules[0].matches[0].path.value", 8, "must be an absolute path" },
        { "path with //", "  rules:\n  - matches:\n    - path: {value: /a//b}\n", "spec.rules[0].matches[0].path.value", 8, "must not contain '//'" },
        { "invalid regex", "  rules:\n  - matches:\n    - path: {type: RegularExpression, value: \"/a(b\"}\n",
            "spec.rules[0].matches[0].path.value", 8, "not a valid regular expression" },
        { "regex beyond RE2", "  rules:\n  - matches:\n    - headers: [{type: RegularExpression, name: a, value: \"(?=x)y\"}]\n",
            "spec.rules[0].matches[0].headers[0].value", 8, "cannot be matched in linear time as RE2 requires" },
        { "bad header name", "  rules:\n  - matches:\n    - headers: [{name: \"bad header\", value: x}]\n",
            "spec.rules[0].matches[0].headers[0].name", 8, "not a valid HTTP header name" },
        { "missing header value", "  rules:\n  - matches:\n    - headers: [{name: x-a}]\n",
            "spec.rules[0].matches[0].headers[0].value", 8, "required" },
        { "duplicate header name", "  rules:\n  - matches:\n    - headers: [{name: a, value: x}, {name: a, value: y}]\n",
            "spec.rules[0].matches[0].headers", 8, "duplicate entry for name 'a'" },
        { "bad method", "  rules:\n  - matches:\n    - method: FETCH\n", "spec.rules[0].matches[0].method", 8, "'FETCH' is not one of" },
        { "weight out of range", "  rules:\n  - backendRefs:\n    - {name: a, port: 80, weight: 1000001}\n",
            "spec.rules[0].backendRefs[0].weight", 8, "out of range (0-1000000)" },
        { "negative weight", "  rules:\n  - backendRefs:\n    - {name: a, port: 80, weight: -1}\n",
            "spec.rules[0].backendRefs[0].weight", 8, "out of range" },
        { "quoted weight", "  rules:\n  - backendRefs:\n    - {name: a, port: 80, weight: \"5\"}\n",
            "spec.rules[0].backendRefs[0].weight", 8, "expected an integer" },
        { "service backend without port", "  rules:\n  - backendRefs:\n    - name: a\n",
            "spec.rules[0].backendRefs[0].port", 8, "Service backend needs the service port" },
        { "backend without name", "  rules:\n  - backendRefs:\n    - port: 80\n", "spec.rules[0].backendRefs[0].name", 8, "required" },
        { "filter without its config", "  rules:\n  - filters:\n    - type: URLRewrite\n", "spec.rules[0].filters[0].urlRewrite", 8, "required" },
        { "filter config of another type", "  rules:\n  - filters:\n    - type: URLRewrite\n      urlRewrite: {}\n      requestRedirect: {}\n",
            "spec.rules[0].filters[0].requestRedirect", 10, "must not be set when the filter type is URLRewrite" },
        { "repeated filter", "  rules:\n  - filters:\n    - {type: URLRewrite, urlRewrite: {}}\n    - {type: URLRewrite, urlRewrite: {}}\n",
            "spec.rules[0].filters", 8, "URLRewrite filter cannot be repeated" },
        { "redirect and rewrite", "  rules:\n  - filters:\n    - {type: URLRewrite, urlRewrite: {}}\n    - {type: RequestRedirect, requestRedirect: {}}\n",
            "spec.rules[0].filters", 8, "either a RequestRedirect or a URLRewrite" },
        { "redirect with backends", "  rules:\n  - filters:\n    - {type: RequestRedirect, requestRedirect: {}}\n    backendRefs: [{name: a, port: 80}]\n",
            "spec.rules[0].filters", 7, "must not be used together with backendRefs" },
        { "bad redirect code", "  rules:\n  - filters:\n    - type: RequestRedirect\n      requestRedirect: {statusCode: 304}\n",
            "spec.rules[0].filters[0].requestRedirect.statusCode", 9, "304 is not one of: 301, 302, 303, 307, 308" },
        { "prefix rewrite without prefix match", "  rules:\n  - matches:\n    - path: {type: Exact, value: /a}\n    filters:\n    - type: URLRewrite\n      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}\n",
            "spec.rules[0].matches", 7, "exactly one PathPrefix match" },
        { "path modifier mismatch", "  rules:\n  - filters:\n    - type: URLRewrite\n      urlRewrite: {path: {type: ReplaceFullPath, replacePrefixMatch: /b}}\n",
            "spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch", 9, "type must be 'ReplacePrefixMatch'" },
        { "mirror percent and fraction", "  rules:\n  - filters:\n    - type: RequestMirror\n      requestMirror:\n        backendRef: {name: m, port: 80}\n        percent: 10\n        fraction: {numerator: 1}\n",
            "spec.rules[0].filters[0].requestMirror.fraction", 12, "only one of percent or fraction" },
        { "mirror percent over 100", "  rules:\n  - filters:\n    - type: RequestMirror\n      requestMirror: {backendRef: {name: m, port: 80}, percent: 101}\n",
            "spec.rules[0].filters[0].requestMirror.percent", 9, "out of range (0-100)" },
        { "fraction above one", "  rules:\n  - filters:\n    - type: RequestMirror\n      requestMirror: {backendRef: {name: m, port: 80}, fraction: {numerator: 5, denominator: 4}}\n",
            "spec.rules[0].filters[0].requestMirror.fraction.numerator", 9, "must be less than or equal to denominator" },
        { "bad duration", "  rules:\n  - timeouts: {request: 1.5s}\n", "spec.rules[0].timeouts.request", 7, "not a Gateway API duration" },
        { "backend timeout longer than request", "  rules:\n  - timeouts:\n      request: 1s\n      backendRequest: 2s\n",
            "spec.rules[0].timeouts.backendRequest", 9, "cannot be longer than request timeout" },
        { "negative attempts", "  rules:\n  - retry: {attempts: -1}\n", "spec.rules[0].retry.attempts", 7, "out of range" },
        { "retry code out of range", "  rules:\n  - retry: {codes: [200]}\n", "spec.rules[0].retry.codes[0]", 7, "out of range (400-599)" },
        { "bad hostname", "  hostnames: [\"Foo.example.com\"]\n", "spec.hostnames[0]", 6, "not a valid hostname" },
        { "too many hostnames", "  hostnames: [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q]\n", "spec.hostnames", 6, "too many entries: 17 (at most 16)" },
        { "parent without name", "  parentRefs:\n  - kind: Service\n", "spec.parentRefs[0].name", 7, "required" },
        { "same parent twice", "  parentRefs:\n  - name: gw\n  - name: gw\n", "spec.parentRefs[1]", 7, "sectionName or port must be specified" },
        { "empty rules", "  rules: []\n", "spec.rules", 6, "at least one rule" },
        { "duplicate rule names", "  rules:\n  - name: a\n  - name: a\n", "spec.rules[1].name", 8, "must be unique" },
        { "cors wildcard with others", "  rules:\n  - filters:\n    - type: CORS\n      cors: {allowOrigins: [\"*\", \"https://a.com\"]}\n",
            "spec.rules[0].filters[0].cors.allowOrigins", 9, "'*' cannot be listed alongside" },
        { "header value with newline", "  rules:\n  - filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier: {set: [{name: a, value: \"x\\ny\"}]}\n",
            "spec.rules[0].filters[0].requestHeaderModifier.set[0].value", 9, "not a valid header value" },
        { "session cookie settings with header type", "  rules:\n  - sessionPersistence:\n      type: Header\n      cookieConfig: {lifetimeType: Session}\n      header: {name: x-session}\n",
            "spec.rules[0].sessionPersistence.cookieConfig", 9, "must not be set unless type is Cookie" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputIsRefusedWithFieldAndLine(string name, string body, string field, int line, string message)
    {
        Assert.NotEmpty(name);
        L7Manifest.Refused(Head + body, field, line, message);
    }

    [Fact]
    public void MissingSpecIsRefused() => L7Manifest.Refused("""
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          name: nospec
        """, "spec", 1, "required");

    [Fact]
    public void UnservedVersionIsRefused() => L7Manifest.Refused("""
        apiVersion: gateway.networking.k8s.io/v2
        kind: HTTPRoute
        metadata:
          name: r
        spec: {}
        """, "apiVersion", 1, "use gateway.networking.k8s.io/v1");

    [Fact]
    public void EveryProblemIsReportedNotJustTheFirst()
    {
        L7Manifest.Result r = L7Manifest.Parse(Head + "  rules:\n  - backendRefs: [{name: a, weight: -3}]\n    timeouts: {request: soon}\n");
        Assert.Null(r.Object);
        Assert.Contains(r.Errors, e => e.Field == "spec.rules[0].backendRefs[0].weight");
        Assert.Contains(r.Errors, e => e.Field == "spec.rules[0].backendRefs[0].port");
        Assert.Contains(r.Errors, e => e.Field == "spec.rules[0].timeouts.request");
    }
}
