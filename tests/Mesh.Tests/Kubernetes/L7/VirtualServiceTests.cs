using System.Text;
using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

public sealed class VirtualServiceTests
{
    internal const string Full = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
          namespace: bookinfo
        spec:
          hosts: [reviews, reviews.example.com]
          http:
          - name: jason-v2
            match:
            - name: jason
              headers:
                End-User: {exact: jason}
                x-debug: {}
              uri: {prefix: /reviews}
              ignoreUriCase: true
              method: {exact: GET}
              queryParams:
                version: {regex: "v[0-9]+"}
              withoutHeaders:
                x-skip: {regex: "*"}
              port: 9080
              sourceLabels: {app: productpage}
              sourceNamespace: frontend
            route:
            - destination: {host: reviews, subset: v2, port: {number: 9080}}
              weight: 75
              headers:
                request:
                  set: {x-route: v2}
                response:
                  remove: [x-internal]
            - destination: {host: reviews, subset: v3}
              weight: 25
            timeout: 10s
            retries:
              attempts: 3
              perTryTimeout: 2s
              retryOn: gateway-error,connect-failure,503
              retryRemoteLocalities: true
            fault:
              delay:
                fixedDelay: 5s
                percentage: {value: 10}
              abort:
                httpStatus: 503
                percentage: {value: 0.5}
            mirror: {host: reviews-shadow}
            mirrorPercentage: {value: 12.5}
            corsPolicy:
              allowOrigins:
              - exact: https://example.com
              - regex: "https://.*\\.example\\.org"
              allowMethods: [GET, POST]
              allowHeaders: [x-token]
              maxAge: 24h
              allowCredentials: false
            headers:
              request:
                add: {x-trace: "%REQ(x-request-id)%"}
            rewrite:
              uri: /v2/reviews
              authority: reviews-v2
          - match:
            - uri: {exact: /old}
            redirect:
              uri: /new
              authority: new.example.com
              redirectCode: 308
          - match:
            - uri: {prefix: /healthz}
            directResponse:
              status: 200
              body: {string: ok}
          - match:
            - uri: {regex: "/api/v[0-9]+/(.*)"}
            rewrite:
              uriRegexRewrite: {match: "/api/v[0-9]+/(.*)", rewrite: "/\\1"}
            route:
            - destination: {host: reviews, subset: v1}
            mirrors:
            - destination: {host: reviews-canary}
              percentage: {value: 5}
            - destination: {host: reviews-audit}
          - route:
            - destination: {host: reviews, subset: v1}
        """;

    [Fact]
    public void FullManifestParsesIntoTheRecord()
    {
        VirtualService vs = L7Manifest.Valid<VirtualService>(Full);
        Assert.Equal("VirtualService/bookinfo/reviews", vs.Key);
        Assert.Equal<string>(["reviews", "reviews.example.com"], vs.Hosts);
        Assert.True(vs.AppliesToMesh);
        Assert.Equal(5, vs.Http.Length);

        VirtualServiceHttpRoute r0 = vs.Http[0];
        Assert.Equal("jason-v2", r0.Name);
        HttpMatchRequest m = Assert.Single(r0.Match);
        Assert.Equal("jason", m.Name);
        Assert.Equal(new IstioStringMatch(StringMatchType.Exact, "jason", null), m.Headers["end-user"]);
        Assert.Equal(StringMatchType.Presence, m.Headers["x-debug"].Type);
        Assert.True(m.IgnoreUriCase);
        Assert.Equal(new IstioStringMatch(StringMatchType.Prefix, "/reviews", null, IgnoreCase: true), m.Uri);
        Assert.True(m.Uri!.Matches("/REVIEWS/1"));
        Assert.Equal(new IstioStringMatch(StringMatchType.Exact, "GET", null), m.Method);
        Assert.True(m.QueryParams["version"].Matches("v12"));
        Assert.False(m.QueryParams["version"].Matches("v1x"));
        Assert.Equal(StringMatchType.Presence, m.WithoutHeaders["x-skip"].Type);
        Assert.Equal(9080, m.Port);
        Assert.Equal("productpage", m.SourceLabels["app"]);
        Assert.Equal("frontend", m.SourceNamespace);

        Assert.Equal(2, r0.Route.Length);
        Assert.Equal(new Destination("reviews", "v2", 9080), r0.Route[0].Destination);
        Assert.Equal(75, r0.Route[0].Weight);
        Assert.Equal("v2", r0.Route[0].Headers!.Request!.Set["x-route"]);
        Assert.Equal<string>(["x-internal"], r0.Route[0].Headers!.Response!.Remove);
        Assert.Equal(new Destination("reviews", "v3", null), r0.Route[1].Destination);
        Assert.Equal(25, r0.Route[1].Weight);

        Assert.Equal(TimeSpan.FromSeconds(10), r0.Timeout);
        HttpRetry retry = r0.Retries!;
        Assert.Equal(3, retry.Attempts);
        Assert.Equal(TimeSpan.FromSeconds(2), retry.PerTryTimeout);
        Assert.Equal<string>(["gateway-error", "connect-failure", "503"], retry.RetryOn);
        Assert.True(retry.RetryRemoteLocalities);
        Assert.Equal(new FaultDelay(TimeSpan.FromSeconds(5), null, 10), r0.Fault!.Delay);
        Assert.Equal(new FaultAbort(503, null, 0.5), r0.Fault.Abort);
        Assert.Equal(new Destination("reviews-shadow", null, null), r0.Mirror);
        Assert.Equal(12.5, r0.MirrorPercentage);
        CorsPolicy cors = r0.CorsPolicy!;
        Assert.Equal(2, cors.AllowOrigins.Length);
        Assert.True(cors.AllowOrigins[1].Matches("https://api.example.org"));
        Assert.Equal<string>(["GET", "POST"], cors.AllowMethods);
        Assert.Equal<string>(["x-token"], cors.AllowHeaders);
        Assert.Equal(TimeSpan.FromHours(24), cors.MaxAge);
        Assert.False(cors.AllowCredentials);
        Assert.Equal("%REQ(x-request-id)%", r0.Headers!.Request!.Add["x-trace"]);
        Assert.Equal(new HttpRewrite("/v2/reviews", "reviews-v2", null), r0.Rewrite);

        VirtualServiceHttpRoute r1 = vs.Http[1];
        Assert.Empty(r1.Route);
        Assert.Equal("/new", r1.Redirect!.Uri);
        Assert.Equal("new.example.com", r1.Redirect.Authority);
        Assert.Equal(308, r1.Redirect.RedirectCode);

        HttpDirectResponse direct = vs.Http[2].DirectResponse!;
        Assert.Equal(200, direct.Status);
        Assert.Equal("ok", Encoding.UTF8.GetString(direct.Body!.Value.Span));

        VirtualServiceHttpRoute r3 = vs.Http[3];
        RegexRewrite regexRewrite = r3.Rewrite!.UriRegexRewrite!;
        Assert.False(regexRewrite.Match.FullMatch);
        Assert.Equal("/ratings", regexRewrite.Apply("/api/v2/ratings"));
        Assert.Equal("/shop/items", regexRewrite.Apply("/shop/api/v1/items")); // a search: the match may be inside the path
        Assert.Equal(2, r3.Mirrors.Length);
        Assert.Equal(new HttpMirrorPolicy(new Destination("reviews-canary", null, null), 5), r3.Mirrors[0]);
        Assert.Null(r3.Mirrors[1].Percentage);
        Assert.Equal(0, Assert.Single(r3.Route).Weight);

        Assert.Empty(vs.Http[4].Match);
    }

    [Fact]
    public void DefaultsAreIstios()
    {
        VirtualService vs = L7Manifest.Valid<VirtualService>("""
            apiVersion: networking.istio.io/v1alpha3
            kind: VirtualService
            metadata:
              name: ratings
            spec:
              hosts: [ratings]
              http:
              - route:
                - destination: {host: ratings}
              - match: [{uri: {prefix: /x}}]
                route: [{destination: {host: ratings}}]
                fault:
                  abort: {grpcStatus: UNAVAILABLE}
              - match: [{uri: {prefix: /y}}]
                redirect: {uri: /y2}
              - match: [{uri: {prefix: /z}}]
                retries: {attempts: 0}
                route: [{destination: {host: ratings}}]
            """);
        VirtualServiceHttpRoute r0 = vs.Http[0];
        Assert.Null(r0.Retries);
        Assert.Equal(2, r0.EffectiveRetries.Attempts);
        Assert.Equal<string>(["connect-failure", "refused-stream", "unavailable", "cancelled"], r0.EffectiveRetries.EffectiveRetryOn);
        Assert.Equal(TimeSpan.FromMilliseconds(25), r0.EffectiveRetries.EffectiveBackoff);
        Assert.Null(r0.Timeout);
        Assert.Null(r0.MirrorPercentage);
        Assert.Equal(0, r0.Route[0].Weight);
        Assert.Equal(new FaultAbort(null, 14, 0), vs.Http[1].Fault!.Abort);
        Assert.Equal(301, vs.Http[2].Redirect!.RedirectCode);
        Assert.Equal(0, vs.Http[3].EffectiveRetries.Attempts);
    }

    [Fact]
    public void TlsAndTcpRoutesParse()
    {
        VirtualService vs = L7Manifest.Valid<VirtualService>("""
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: db
            spec:
              hosts: ["*.db.example.com"]
              gateways: [istio-system/edge]
              tls:
              - match:
                - sniHosts: [pg.db.example.com]
                  port: 5433
                route:
                - destination: {host: pg.db.svc.cluster.local, port: {number: 5432}}
              tcp:
              - match:
                - destinationSubnets: [10.0.0.0/8]
                  sourceSubnet: 192.168.0.0/16
                route:
                - destination: {host: mysql}
                  weight: 100
            """);
        Assert.False(vs.AppliesToMesh);
        TlsMatchAttributes tls = Assert.Single(Assert.Single(vs.Tls).Match);
        Assert.Equal<string>(["pg.db.example.com"], tls.SniHosts);
        Assert.Equal(5433, tls.Port);
        Assert.Equal(new Destination("pg.db.svc.cluster.local", null, 5432), Assert.Single(vs.Tls[0].Route).Destination);
        L4MatchAttributes tcp = Assert.Single(Assert.Single(vs.Tcp).Match);
        Assert.Equal<string>(["10.0.0.0/8"], tcp.DestinationSubnets);
        Assert.Equal("192.168.0.0/16", tcp.SourceSubnet);
        Assert.Equal(100, vs.Tcp[0].Route[0].Weight);
    }

    [Fact]
    public void DeprecatedMirrorPercentIsReadWithAWarning()
    {
        L7Manifest.Result r = L7Manifest.Parse("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: legacy
            spec:
              hosts: [a]
              http:
              - route: [{destination: {host: a}}]
                mirror: {host: b}
                mirror_percent: 30
            """);
        Assert.Empty(r.Errors);
        Assert.Equal(30, Assert.IsType<VirtualService>(r.Object).Http[0].MirrorPercentage);
        Assert.Contains(r.Warnings, w => w.Field == "spec.http[0].mirror_percent" && w.Line == 10);
    }

    private const string Head = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: bad
        spec:
          hosts: [reviews]

        """;

    private const string R = "  http:\n  - route: [{destination: {host: reviews}}]\n";

    // Each case: the spec body after hosts (starting on line 7), the field and line of the expected error, part of its message.
    public static TheoryData<string, string, string, int, string> BadInputs() => new()
    {
        { "unknown spec field", "  http: []\n  gateway: [mesh]\n", "spec.gateway", 8, "did you mean 'gateways'" },
        { "unknown route field", R + "    retry: {attempts: 1}\n", "spec.http[0].retry", 9, "unknown field 'retry'; expected one of: name, match" },
        { "unknown match field", "  http:\n  - match: [{url: {prefix: /}}]\n    route: [{destination: {host: a}}]\n", "spec.http[0].match[0].url", 8, "unknown field 'url'" },
        { "no routes at all", "  exportTo: [\".\"]\n", "spec", 6, "http, tcp or tls routes must be provided" },
        { "rule without action", "  http:\n  - match: [{uri: {prefix: /}}]\n", "spec.http[0].route", 8, "needs a route, redirect, directResponse or delegate" },
        { "route and redirect", "  http:\n  - route: [{destination: {host: a}}]\n    redirect: {uri: /b}\n", "spec.http[0].route", 8, "both route and redirect" },
        { "negative weight", "  http:\n  - route:\n    - destination: {host: a}\n      weight: -10\n", "spec.http[0].route[0].weight", 10, "negative" },
        { "all weights zero", "  http:\n  - route:\n    - {destination: {host: a}, weight: 0}\n    - {destination: {host: b}, weight: 0}\n", "spec.http[0].route", 9, "add up to 0" },
        { "destination without host", "  http:\n  - route: [{destination: {subset: v1}}]\n", "spec.http[0].route[0].destination.host", 8, "required" },
        { "wildcard destination", "  http:\n  - route: [{destination: {host: \"*\"}}]\n", "spec.http[0].route[0].destination.host", 8, "not a destination host" },
        { "bad subset", "  http:\n  - route: [{destination: {host: a, subset: V_1}}]\n", "spec.http[0].route[0].destination.subset", 8, "not a valid subset name" },
        { "invalid regex", "  http:\n  - match: [{uri: {regex: \"/a[\"}}]\n    route: [{destination: {host: a}}]\n", "spec.http[0].match[0].uri.regex", 8, "not a valid regular expression" },
        { "two match types", "  http:\n  - match: [{uri: {exact: /a, prefix: /b}}]\n    route: [{destination: {host: a}}]\n", "spec.http[0].match[0].uri.prefix", 8, "only one of exact, prefix and regex" },
        { "empty method prefix", "  http:\n  - match: [{method: {prefix: \"\"}}]\n    route: [{destination: {host: a}}]\n", "spec.http[0].match[0].method.prefix", 8, "must not be empty" },
        { "bad header name", "  http:\n  - match: [{headers: {\"x a\": {exact: b}}}]\n    route: [{destination: {host: a}}]\n", "spec.http[0].match[0].headers.x a", 8, "not a valid HTTP header name" },
        { "jwt claim in mesh", "  http:\n  - match: [{headers: {\"@request.auth.claims.group\": {exact: a}}}]\n    route: [{destination: {host: a}}]\n",
            "spec.http[0].match[0].headers.@request.auth.claims.group", 8, "only supported for gateways" },
        { "negative attempts", R + "    retries: {attempts: -1}\n", "spec.http[0].retries.attempts", 9, "cannot be negative" },
        { "retry settings without attempts", R + "    retries: {perTryTimeout: 1s}\n", "spec.http[0].retries.perTryTimeout", 9, "attempts is unset" },
        { "bad retryOn", R + "    retries: {attempts: 2, retryOn: \"5xx,sometimes\"}\n", "spec.http[0].retries.retryOn", 9, "'sometimes' is not a valid retryOn policy" },
        { "bad timeout", R + "    timeout: 1.5 seconds\n", "spec.http[0].timeout", 9, "is not a duration" },
        { "sub-millisecond timeout", R + "    timeout: 1500us\n", "spec.http[0].timeout", 9, "finer than a millisecond" },
        { "fault percentage over 100", R + "    fault:\n      abort: {httpStatus: 500, percentage: {value: 120}}\n", "spec.http[0].fault.abort.percentage.value", 10, "out of range (0-100)" },
        { "fault percentage too fine", R + "    fault:\n      delay: {fixedDelay: 1s, percentage: {value: 0.00001}}\n", "spec.http[0].fault.delay.percentage.value", 10, "neither 0 nor in the range" },
        { "abort status out of range", R + "    fault:\n      abort: {httpStatus: 700}\n", "spec.http[0].fault.abort.httpStatus", 10, "not in range 200-599" },
        { "unknown grpc status", R + "    fault:\n      abort: {grpcStatus: BROKEN}\n", "spec.http[0].fault.abort.grpcStatus", 10, "not a gRPC status" },
        { "delay without duration", R + "    fault:\n      delay: {percentage: {value: 5}}\n", "spec.http[0].fault.delay.fixedDelay", 10, "required" },
        { "empty fault", R + "    fault: {}\n", "spec.http[0].fault", 9, "abort and/or a delay" },
        { "mirror percentage", R + "    mirror: {host: b}\n    mirrorPercentage: {value: 101}\n", "spec.http[0].mirrorPercentage.value", 10, "out of range (0-100)" },
        { "mirror and mirrors", R + "    mirror: {host: b}\n    mirrors: [{destination: {host: c}}]\n", "spec.http[0].mirrors", 10, "both mirror and mirrors" },
        { "redirect code", "  http:\n  - redirect: {uri: /b, redirectCode: 200}\n", "spec.http[0].redirect.redirectCode", 8, "not a redirect code" },
        { "redirect uri and prefix", "  http:\n  - redirect: {uri: /b, prefixRewrite: /c}\n", "spec.http[0].redirect.prefixRewrite", 8, "only one of uri and prefixRewrite" },
        { "empty redirect", "  http:\n  - redirect: {redirectCode: 302}\n", "spec.http[0].redirect", 8, "must set uri, prefixRewrite, authority, scheme or port" },
        { "direct response status", "  http:\n  - directResponse: {status: 100}\n", "spec.http[0].directResponse.status", 8, "not in range 200-599" },
        { "rewrite uri and regex", R + "    rewrite:\n      uri: /a\n      uriRegexRewrite: {match: a, rewrite: b}\n", "spec.http[0].rewrite.uriRegexRewrite", 11, "only one of uri and uriRegexRewrite" },
        { "authority twice", R + "    rewrite: {authority: a}\n    headers:\n      request:\n        set: {host: b}\n", "spec.http[0].headers", 10, "authority cannot be set more than once" },
        { "pseudo header edit", R + "    headers:\n      request:\n        set: {\":path\": /x}\n", "spec.http[0].headers.request.set.:path", 11, "pseudo-header" },
        { "remove host", R + "    headers:\n      request:\n        remove: [Host]\n", "spec.http[0].headers.request.remove[0]", 11, "Host header cannot be removed" },
        { "unescaped percent", R + "    headers:\n      response:\n        set: {x-a: \"100%\"}\n", "spec.http[0].headers.response.set.x-a", 11, "unescaped '%'" },
        { "cors method", R + "    corsPolicy: {allowMethods: [FETCH]}\n", "spec.http[0].corsPolicy.allowMethods[0]", 9, "'FETCH' is not one of" },
        { "bad match port", "  http:\n  - match: [{port: 70000}]\n    route: [{destination: {host: a}}]\n", "spec.http[0].match[0].port", 8, "must be in the range 1..65535" },
        { "bad gateway name", "  gateways: [\"ns/Bad_Name\"]\n" + R, "spec.gateways[0]", 7, "invalid gateway name" },
        { "bad source label", "  http:\n  - match: [{sourceLabels: {app: \"a b\"}}]\n    route: [{destination: {host: a}}]\n", "spec.http[0].match[0].sourceLabels.app", 8, "not a valid label value" },
        { "tls without sni", "  tls:\n  - match: [{port: 443}]\n    route: [{destination: {host: a}}]\n", "spec.tls[0].match[0].sniHosts", 8, "required" },
        { "sni outside hosts", "  tls:\n  - match: [{sniHosts: [other.example.com]}]\n    route: [{destination: {host: a}}]\n", "spec.tls[0].match[0].sniHosts[0]", 8, "not one of the virtual service's hosts" },
        { "tcp bad subnet", "  tcp:\n  - match: [{destinationSubnets: [10.0.0.0/40]}]\n    route: [{destination: {host: a}}]\n", "spec.tcp[0].match[0].destinationSubnets[0]", 8, "invalid prefix length" },
        { "tcp without route", "  tcp:\n  - match: [{port: 3306}]\n", "spec.tcp[0].route", 8, "required" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputIsRefusedWithFieldAndLine(string name, string body, string field, int line, string message)
    {
        Assert.NotEmpty(name);
        L7Manifest.Refused(Head + body, field, line, message);
    }

    [Fact]
    public void WildcardHostIsRefusedForTheMesh() => L7Manifest.Refused("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: all
        spec:
          hosts: ["*"]
          http:
          - route: [{destination: {host: a}}]
        """, "spec.hosts[0]", 6, "not allowed for virtual services bound to the mesh");

    [Fact]
    public void OverlappingHostsAreRefused() => L7Manifest.Refused("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: dup
        spec:
          hosts: ["*.example.com", "api.example.com"]
          http:
          - route: [{destination: {host: a}}]
        """, "spec.hosts", 6, "duplicate hosts");

    [Fact]
    public void DelegateRulesAreChecked()
    {
        VirtualService root = L7Manifest.Valid<VirtualService>("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: root
            spec:
              hosts: [shop]
              http:
              - match: [{uri: {prefix: /cart}}]
                delegate: {name: cart, namespace: shop}
            """);
        Assert.Equal(new VirtualServiceDelegate("cart", "shop"), root.Http[0].Delegate);

        L7Manifest.Refused("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: cart
            spec:
              http:
              - delegate: {name: deeper}
            """, "spec.http[0].delegate", 7, "cannot delegate again");
    }
}
