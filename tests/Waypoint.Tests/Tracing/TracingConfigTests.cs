using System.Collections;
using System.Diagnostics;
using Ambient.Waypoint.Telemetry.Tracing;
using Ambient.Waypoint.Tests.Support;
using OpenTelemetry.Exporter;

namespace Ambient.Waypoint.Tests.Tracing;

/// <summary>How the waypoint reads its tracing settings: the OTEL_* variables, and Istio's Telemetry precedence.</summary>
public sealed class TracingConfigTests
{
    [Theory]
    // variables ("NAME=value;..."), expected endpoint, protocol, fallback percentage, whether the fallback ignores the parent
    [InlineData("", null, "grpc", null, false)]
    [InlineData("OTEL_EXPORTER_OTLP_ENDPOINT=http://otel:4317", "http://otel:4317/", "grpc", null, false)]
    [InlineData("OTEL_EXPORTER_OTLP_ENDPOINT=http://otel:4318;OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "http://otel:4318/v1/traces", "http/protobuf", null, false)]
    [InlineData("OTEL_EXPORTER_OTLP_ENDPOINT=http://otel:4318/;OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "http://otel:4318/v1/traces", "http/protobuf", null, false)]
    [InlineData("OTEL_EXPORTER_OTLP_ENDPOINT=http://x:1;OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://otel:4318/custom;OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf", "http://otel:4318/custom", "http/protobuf", null, false)]
    [InlineData("OTEL_TRACES_SAMPLER=parentbased_traceidratio;OTEL_TRACES_SAMPLER_ARG=0.25", null, "grpc", 25.0, false)]
    [InlineData("OTEL_TRACES_SAMPLER=traceidratio;OTEL_TRACES_SAMPLER_ARG=0.5", null, "grpc", 50.0, true)]
    [InlineData("OTEL_TRACES_SAMPLER=always_on", null, "grpc", 100.0, true)]
    [InlineData("OTEL_TRACES_SAMPLER=parentbased_always_off", null, "grpc", 0.0, false)]
    public void ReadsTheStandardVariables(string variables, string? endpoint, string protocol, double? percentage, bool ignoresParent)
    {
        var o = TracingOptions.FromEnvironment(Env(variables));
        Assert.Equal(endpoint, o.Endpoint?.AbsoluteUri);
        Assert.Equal(protocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf, o.Protocol);
        Assert.Equal(percentage, o.FallbackPercentage);
        Assert.Equal(ignoresParent, o.FallbackIgnoresParent);
        Assert.Equal(endpoint is not null, o.Enabled);
    }

    [Theory]
    [InlineData("OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "OTEL_EXPORTER_OTLP_PROTOCOL")]
    [InlineData("OTEL_EXPORTER_OTLP_ENDPOINT=otel:4317", "OTEL_EXPORTER_OTLP_ENDPOINT")]
    [InlineData("OTEL_TRACES_SAMPLER=sometimes", "OTEL_TRACES_SAMPLER")]
    [InlineData("OTEL_TRACES_SAMPLER=traceidratio;OTEL_TRACES_SAMPLER_ARG=1.5", "OTEL_TRACES_SAMPLER_ARG")]
    [InlineData("OTEL_BSP_MAX_QUEUE_SIZE=-1", "OTEL_BSP_MAX_QUEUE_SIZE")]
    public void BadValuesAreRefusedByName(string variables, string named)
    {
        var ex = Assert.Throws<FormatException>(() => TracingOptions.FromEnvironment(Env(variables)));
        Assert.StartsWith(named + ":", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    // Telemetry resources present (root = istio-system mesh-wide, ns = shop namespace-wide, gw = targetRefs the
    // waypoint's Gateway, other = targetRefs another Gateway), each with its percentage; expected percentage.
    [InlineData("", null)]
    [InlineData("root=5", 5.0)]
    [InlineData("root=5 ns=20", 20.0)]
    [InlineData("root=5 ns=20 gw=70", 70.0)]
    [InlineData("root=5 gw=70", 70.0)]
    [InlineData("root=5 other=70", 5.0)]
    [InlineData("ns=- root=5", 5.0)] // a namespace Telemetry without a percentage leaves the mesh's in force
    [InlineData("gw=0 ns=20", 0.0)]
    public void TelemetryPrecedenceIsIstios(string resources, double? expected)
    {
        var yaml = new List<string>();
        foreach (var item in resources.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var (level, value) = (item.Split('=')[0], item.Split('=')[1]);
            string ns = level == "root" ? "istio-system" : "shop";
            string target = level switch
            {
                "gw" => "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]",
                "other" => "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: other}]",
                _ => "",
            };
            string tracing = value == "-" ? "tracing: [{customTags: {}}]" : $"tracing: [{{randomSamplingPercentage: {value}}}]";
            yaml.Add($$"""
                apiVersion: telemetry.istio.io/v1
                kind: Telemetry
                metadata: {name: t-{{level}}, namespace: {{ns}}}
                spec:
                  {{target}}
                  {{tracing}}
                """);
        }
        var snapshot = Snapshots.Build(string.Join("\n---\n", yaml));
        var (percentage, source) = new TracingPolicy(Snapshots.Waypoint).For(snapshot);
        Assert.Equal(expected, percentage);
        Assert.Equal(expected is null, source is null);
    }

    [Fact]
    public void AServiceTelemetryIsTheMostSpecificAndEachLevelOverridesOnlyWhatItSets()
    {
        static string T(string name, string ns, string target, string tracing) => $$"""
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: {{name}}, namespace: {{ns}}}
            spec:
              {{target}}
              tracing: [{{{tracing}}}]
            """;
        var snapshot = Snapshots.Build(string.Join("\n---\n",
            T("root", "istio-system", "", "randomSamplingPercentage: 5, customTags: {a: {literal: {value: root}}, b: {literal: {value: root}}}"),
            T("ns", "shop", "", "disableSpanReporting: true, customTags: {b: {literal: {value: ns}}}"),
            T("gw", "shop", "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]", "randomSamplingPercentage: 50"),
            T("svc", "shop", "targetRefs: [{kind: Service, name: echo}]", "randomSamplingPercentage: 80, disableSpanReporting: false, customTags: {c: {header: {name: x-c}}}"),
            T("svc-other", "shop", "targetRefs: [{kind: Service, name: other}]", "randomSamplingPercentage: 10"),
            T("elsewhere", "jobs", "targetRefs: [{kind: Service, name: echo}]", "randomSamplingPercentage: 99")));
        var policy = new TracingPolicy(Snapshots.Waypoint);
        var echo = snapshot.FindServiceByHostname("echo.shop.svc.cluster.local");
        var other = snapshot.FindServiceByHostname("other.shop.svc.cluster.local");
        Assert.NotNull(echo);
        Assert.NotNull(other);

        var waypoint = policy.For(snapshot, null);
        Assert.Equal((50.0, "Telemetry shop/gw", true), (waypoint.Percentage, waypoint.Source, waypoint.DisableSpanReporting));
        Assert.Equal("a=root b=ns", Tags(waypoint));

        var forEcho = policy.For(snapshot, echo);
        Assert.Equal((80.0, "Telemetry shop/svc", false), (forEcho.Percentage, forEcho.Source, forEcho.DisableSpanReporting));
        Assert.Equal("a=root b=ns c=header:x-c", Tags(forEcho));

        var forOther = policy.For(snapshot, other);
        Assert.Equal((10.0, true), (forOther.Percentage, forOther.DisableSpanReporting));
        Assert.Equal("a=root b=ns", Tags(forOther));

        static string Tags(TracingSettings s) => string.Join(' ', s.CustomTags.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => kv.Value.Type == Mesh.Model.L7.CustomTagType.Header ? $"{kv.Key}=header:{kv.Value.Name}" : $"{kv.Key}={kv.Value.Value}"));
    }

    [Fact]
    public void TraceIdRatioSamplesItsShare()
    {
        var ids = Enumerable.Range(0, 2000).Select(_ => ActivityTraceId.CreateRandom()).ToList();
        Assert.DoesNotContain(ids, id => WaypointSampler.IsSampled(id, 0));
        Assert.All(ids, id => Assert.True(WaypointSampler.IsSampled(id, 100)));
        int half = ids.Count(id => WaypointSampler.IsSampled(id, 50));
        // 2000 draws at p = 0.5: the standard deviation is about 22, so 800..1200 fails only if the hash is skewed.
        Assert.InRange(half, 800, 1200);
        // The same trace id always gets the same answer (every replica agrees).
        Assert.All(ids, id => Assert.Equal(WaypointSampler.IsSampled(id, 30), WaypointSampler.IsSampled(id, 30)));
    }

    private static Hashtable Env(string variables)
    {
        var env = new Hashtable();
        foreach (var pair in variables.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            env[pair[..eq]] = pair[(eq + 1)..];
        }
        return env;
    }
}
