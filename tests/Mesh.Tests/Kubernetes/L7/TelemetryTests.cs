using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

public sealed class TelemetryTests
{
    internal const string Full = """
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata:
          name: waypoint-tracing
          namespace: bookinfo
        spec:
          targetRefs:
          - group: gateway.networking.k8s.io
            kind: Gateway
            name: waypoint
          tracing:
          - match: {mode: SERVER}
            providers:
            - name: otel-tracing
            randomSamplingPercentage: 1.5
            disableSpanReporting: false
            customTags:
              cluster:
                literal: {value: east-1}
              pod:
                environment: {name: POD_NAME, defaultValue: unknown}
              user:
                header: {name: x-user}
          accessLogging:
          - providers: [{name: envoy}]
            filter:
              expression: response.code >= 400
          metrics:
          - providers: [{name: prometheus}]
            reportingInterval: 15s
            overrides:
            - match: {metric: REQUEST_COUNT, mode: CLIENT}
              tagOverrides:
                request_host: {value: request.host}
                destination_canonical_revision: {operation: REMOVE}
            - match: {customMetric: my_metric}
              disabled: true
        """;

    [Fact]
    public void FullManifestParsesIntoTheRecord()
    {
        Telemetry t = L7Manifest.Valid<Telemetry>(Full);
        Assert.Equal("Telemetry/bookinfo/waypoint-tracing", t.Key);
        Assert.Null(t.Selector);
        Assert.Equal(new PolicyTargetReference("gateway.networking.k8s.io", "Gateway", "waypoint"), Assert.Single(t.TargetRefs));

        TracingConfig tracing = Assert.Single(t.Tracing);
        Assert.Equal(WorkloadMode.Server, tracing.Match);
        Assert.Equal<string>(["otel-tracing"], tracing.Providers);
        Assert.Equal(1.5, tracing.RandomSamplingPercentage);
        Assert.False(tracing.DisableSpanReporting);
        Assert.Equal(new CustomTag(CustomTagType.Literal, null, "east-1", null), tracing.CustomTags["cluster"]);
        Assert.Equal(new CustomTag(CustomTagType.Environment, "POD_NAME", null, "unknown"), tracing.CustomTags["pod"]);
        Assert.Equal(new CustomTag(CustomTagType.Header, "x-user", null, null), tracing.CustomTags["user"]);

        AccessLoggingConfig log = Assert.Single(t.AccessLogging);
        Assert.Equal(WorkloadMode.ClientAndServer, log.Match);
        Assert.Equal<string>(["envoy"], log.Providers);
        Assert.Equal("response.code >= 400", log.Filter);

        MetricsConfig metrics = Assert.Single(t.Metrics);
        Assert.Equal(TimeSpan.FromSeconds(15), metrics.ReportingInterval);
        Assert.Equal(new MetricSelector("REQUEST_COUNT", null, WorkloadMode.Client), metrics.Overrides[0].Match);
        Assert.Equal(new TagOverride(TagOperation.Upsert, "request.host"), metrics.Overrides[0].TagOverrides["request_host"]);
        Assert.Equal(new TagOverride(TagOperation.Remove, null), metrics.Overrides[0].TagOverrides["destination_canonical_revision"]);
        Assert.Equal("my_metric", metrics.Overrides[1].Match!.CustomMetric);
        Assert.True(metrics.Overrides[1].Disabled);
    }

    [Fact]
    public void SelectorAndMinimalForms()
    {
        Telemetry bySelector = L7Manifest.Valid<Telemetry>("""
            apiVersion: telemetry.istio.io/v1alpha1
            kind: Telemetry
            metadata:
              name: sampled
            spec:
              selector:
                matchLabels: {app: reviews}
              tracing:
              - randomSamplingPercentage: 100
            """);
        Assert.Equal("reviews", bySelector.Selector!["app"]);
        Assert.Empty(bySelector.TargetRefs);
        TracingConfig tracing = Assert.Single(bySelector.Tracing);
        Assert.Equal(100, tracing.RandomSamplingPercentage);
        Assert.Equal(WorkloadMode.ClientAndServer, tracing.Match);
        Assert.Empty(tracing.Providers);

        // A namespace-wide Telemetry may have an empty spec, or none at all.
        Telemetry empty = L7Manifest.Valid<Telemetry>("""
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata:
              name: mesh-default
              namespace: istio-system
            """);
        Assert.Empty(empty.Tracing);
        Assert.Null(empty.Selector);

        // The older single targetRef lands in TargetRefs.
        Telemetry single = L7Manifest.Valid<Telemetry>("""
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata:
              name: svc
            spec:
              targetRef: {kind: Service, name: reviews}
            """);
        Assert.Equal(new PolicyTargetReference("", "Service", "reviews"), Assert.Single(single.TargetRefs));
    }

    private const string Head = """
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata:
          name: bad
        spec:

        """;

    // Each case: the spec body (starting on line 6), the field and line of the expected error, part of its message.
    public static TheoryData<string, string, string, int, string> BadInputs() => new()
    {
        { "unknown field", "  tracng: []\n", "spec.tracng", 6, "did you mean 'tracing'" },
        { "unknown tracing field", "  tracing:\n  - samplingPercentage: 5\n", "spec.tracing[0].samplingPercentage", 7, "unknown field" },
        { "sampling over 100", "  tracing:\n  - randomSamplingPercentage: 150\n", "spec.tracing[0].randomSamplingPercentage", 7, "out of range (0-100)" },
        { "negative sampling", "  tracing:\n  - randomSamplingPercentage: -1\n", "spec.tracing[0].randomSamplingPercentage", 7, "out of range (0-100)" },
        { "sampling as string", "  tracing:\n  - randomSamplingPercentage: \"5\"\n", "spec.tracing[0].randomSamplingPercentage", 7, "expected a number" },
        { "bad mode", "  tracing:\n  - match: {mode: BOTH}\n", "spec.tracing[0].match.mode", 7, "'BOTH' is not one of: CLIENT_AND_SERVER, CLIENT, SERVER" },
        { "provider without name", "  tracing:\n  - providers: [{}]\n", "spec.tracing[0].providers[0].name", 7, "required" },
        { "custom tag two kinds", "  tracing:\n  - customTags:\n      a:\n        literal: {value: x}\n        header: {name: y}\n",
            "spec.tracing[0].customTags.a.header", 10, "only one of literal, environment, header and formatter" },
        { "custom tag empty literal", "  tracing:\n  - customTags:\n      a: {literal: {value: \"\"}}\n", "spec.tracing[0].customTags.a.literal.value", 8, "must not be empty" },
        { "unknown custom tag kind", "  tracing:\n  - customTags:\n      a: {literl: {value: x}}\n", "spec.tracing[0].customTags.a.literl", 8, "unknown field 'literl'" },
        { "header tag without name", "  tracing:\n  - customTags:\n      a: {header: {defaultValue: x}}\n", "spec.tracing[0].customTags.a.header.name", 8, "required" },
        { "literal tag with default", "  tracing:\n  - customTags:\n      a: {literal: {value: x, defaultValue: y}}\n", "spec.tracing[0].customTags.a.literal.defaultValue", 8, "unknown field" },
        { "span reporting not a bool", "  tracing:\n  - disableSpanReporting: sometimes\n", "spec.tracing[0].disableSpanReporting", 7, "" },
        { "service target without name", "  targetRefs: [{kind: Service}]\n", "spec.targetRefs[0].name", 6, "required" },
        { "selector and targetRefs", "  selector: {matchLabels: {app: a}}\n  targetRefs: [{kind: Service, name: a}]\n", "spec.targetRefs", 7, "only one of selector, targetRef and targetRefs" },
        { "target kind not allowed", "  targetRefs: [{kind: Deployment, group: apps, name: a}]\n", "spec.targetRefs[0]", 6, "targetRef must be a Service" },
        { "cross-namespace target", "  targetRef: {kind: Service, name: a, namespace: other}\n", "spec.targetRef.namespace", 6, "cross-namespace" },
        { "unknown metric", "  metrics:\n  - overrides:\n    - match: {metric: REQUESTS}\n", "spec.metrics[0].overrides[0].match.metric", 8, "'REQUESTS' is not one of" },
        { "upsert without value", "  metrics:\n  - overrides:\n    - tagOverrides:\n        a: {operation: UPSERT}\n", "spec.metrics[0].overrides[0].tagOverrides.a.value", 9, "needs a value" },
        { "remove with value", "  metrics:\n  - overrides:\n    - tagOverrides:\n        a: {operation: REMOVE, value: x}\n", "spec.metrics[0].overrides[0].tagOverrides.a.value", 9, "must not have a value" },
        { "bad reporting interval", "  metrics:\n  - reportingInterval: 0s\n", "spec.metrics[0].reportingInterval", 7, "at least 1ms" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputIsRefusedWithFieldAndLine(string name, string body, string field, int line, string message)
    {
        Assert.NotEmpty(name);
        L7Manifest.Refused(Head + body, field, line, message);
    }
}
