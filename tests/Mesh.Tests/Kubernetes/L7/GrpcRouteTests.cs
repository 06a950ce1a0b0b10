using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

public sealed class GrpcRouteTests
{
    internal const string Full = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: GRPCRoute
        metadata:
          name: greeter
          namespace: grpc
        spec:
          parentRefs:
          - {group: "", kind: Service, name: greeter, port: 50051}
          hostnames: [greeter.grpc.svc.cluster.local]
          rules:
          - name: say-hello-v2
            matches:
            - method: {service: helloworld.Greeter, method: SayHello}
              headers:
              - {name: x-version, value: v2}
            filters:
            - type: RequestHeaderModifier
              requestHeaderModifier:
                add: [{name: x-routed, value: grpc-v2}]
            - type: RequestMirror
              requestMirror:
                backendRef: {name: greeter-shadow, port: 50051}
                percent: 10
            backendRefs:
            - name: greeter-v2
              port: 50051
              weight: 3
            - name: greeter-v1
              port: 50051
          - matches:
            - method: {type: RegularExpression, service: "helloworld\\..*", method: "Say.*"}
            backendRefs:
            - {name: greeter-v1, port: 50051}
          - backendRefs:
            - {name: greeter-v1, port: 50051}
        """;

    [Fact]
    public void FullManifestParsesIntoTheRecord()
    {
        GrpcRoute route = L7Manifest.Valid<GrpcRoute>(Full);
        Assert.Equal("GRPCRoute/grpc/greeter", route.Key);
        Assert.Equal(new ParentReference("", "Service", null, "greeter", null, 50051), Assert.Single(route.ParentRefs));
        Assert.Equal<string>(["greeter.grpc.svc.cluster.local"], route.Hostnames);
        Assert.Equal(3, route.Rules.Length);

        GrpcRouteRule r0 = route.Rules[0];
        Assert.Equal("say-hello-v2", r0.Name);
        GrpcRouteMatch m = Assert.Single(r0.Matches);
        Assert.Equal(new GrpcMethodMatch(ValueMatchType.Exact, "helloworld.Greeter", "SayHello", null, null), m.Method);
        Assert.True(m.Method!.Matches("helloworld.Greeter", "SayHello"));
        Assert.False(m.Method.Matches("helloworld.Greeter", "SayGoodbye"));
        Assert.Equal(new HeaderMatch(ValueMatchType.Exact, "x-version", "v2", null), Assert.Single(m.Headers));
        Assert.Equal<HttpHeader>([new HttpHeader("x-routed", "grpc-v2")], Assert.IsType<RequestHeaderModifierFilter>(r0.Filters[0]).Modifier.Add);
        var mirror = Assert.IsType<RequestMirrorFilter>(r0.Filters[1]);
        Assert.Equal(10, mirror.Percent);
        Assert.Equal(0.1, mirror.Share);
        Assert.Equal(3, r0.BackendRefs[0].Weight);
        Assert.Equal(1, r0.BackendRefs[1].Weight);

        GrpcMethodMatch regex = route.Rules[1].Matches[0].Method!;
        Assert.Equal(ValueMatchType.RegularExpression, regex.Type);
        Assert.True(regex.Matches("helloworld.Greeter", "SayHi"));
        Assert.False(regex.Matches("other.Greeter", "SayHi"));

        Assert.Empty(route.Rules[2].Matches);
    }

    [Fact]
    public void ServiceOnlyOrMethodOnlyMatches()
    {
        GrpcRoute route = L7Manifest.Valid<GrpcRoute>("""
            apiVersion: gateway.networking.k8s.io/v1alpha2
            kind: GRPCRoute
            metadata:
              name: partial
            spec:
              rules:
              - matches:
                - method: {service: helloworld.Greeter}
                - method: {method: Check}
            """);
        GrpcRouteRule rule = Assert.Single(route.Rules);
        Assert.True(rule.Matches[0].Method!.Matches("helloworld.Greeter", "Anything"));
        Assert.True(rule.Matches[1].Method!.Matches("grpc.health.v1.Health", "Check"));
        Assert.Empty(route.ParentRefs);
    }

    private const string Head = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: GRPCRoute
        metadata:
          name: bad
        spec:

        """;

    // Each case: the spec body (starting on line 6), the field and line of the expected error, part of its message.
    public static TheoryData<string, string, string, int, string> BadInputs() => new()
    {
        { "unknown rule field", "  rules:\n  - timeouts: {}\n", "spec.rules[0].timeouts", 7, "unknown field 'timeouts'" },
        { "method without service or method", "  rules:\n  - matches:\n    - method: {type: Exact}\n", "spec.rules[0].matches[0].method", 8, "one or both of 'service' or 'method'" },
        { "bad service name", "  rules:\n  - matches:\n    - method: {service: \"hello world\"}\n", "spec.rules[0].matches[0].method.service", 8, "not a gRPC service name" },
        { "bad method name", "  rules:\n  - matches:\n    - method: {method: \"Say/Hello\"}\n", "spec.rules[0].matches[0].method.method", 8, "not a gRPC method name" },
        { "invalid regex", "  rules:\n  - matches:\n    - method: {type: RegularExpression, method: \"Say(\"}\n", "spec.rules[0].matches[0].method.method", 8, "not a valid regular expression" },
        { "bad match type", "  rules:\n  - matches:\n    - method: {type: Prefix, service: a}\n", "spec.rules[0].matches[0].method.type", 8, "'Prefix' is not one of: Exact, RegularExpression" },
        { "http-only filter", "  rules:\n  - filters:\n    - type: URLRewrite\n      urlRewrite: {}\n", "spec.rules[0].filters[0].type", 8, "'URLRewrite' is not one of" },
        { "weight out of range", "  rules:\n  - backendRefs: [{name: a, port: 1, weight: 2000000}]\n", "spec.rules[0].backendRefs[0].weight", 7, "out of range (0-1000000)" },
        { "too many rules", "  rules: [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}]\n", "spec.rules", 6, "too many entries: 17 (at most 16)" },
        { "bad header name", "  rules:\n  - matches:\n    - headers: [{name: \"a:b\", value: c}]\n", "spec.rules[0].matches[0].headers[0].name", 8, "not a valid HTTP header name" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputIsRefusedWithFieldAndLine(string name, string body, string field, int line, string message)
    {
        Assert.NotEmpty(name);
        L7Manifest.Refused(Head + body, field, line, message);
    }

    [Fact]
    public void V1beta1IsNotAGrpcRouteVersion() => L7Manifest.Refused("""
        apiVersion: gateway.networking.k8s.io/v1beta1
        kind: GRPCRoute
        metadata:
          name: r
        spec: {}
        """, "apiVersion", 1, "use gateway.networking.k8s.io/v1 or gateway.networking.k8s.io/v1alpha2");
}
