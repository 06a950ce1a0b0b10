using System.Net;
using System.Net.Sockets;
using Ambient.OtlpReceiver;
using Ambient.OtlpReceiver.Proto.Trace.V1;
using Ambient.Waypoint.Telemetry;
using Ambient.Waypoint.Telemetry.Tracing;
using Ambient.Waypoint.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;

namespace Ambient.Waypoint.Tests.Tracing;

/// <summary>
/// Tracing through client -> ztunnel -> waypoint -> ztunnel -> echo with curl, checked against an OTLP receiver
/// (HTTP/protobuf and gRPC) that decodes with code generated from the OTLP .proto files: the waypoint's server span
/// continues the caller's trace, its client span is the parent the backend sees, Istio's tags are there, B3 passes,
/// Telemetry resources set the sampling live, and an unreachable collector costs requests nothing.
/// </summary>
public sealed class TracingEndToEndTests
{
    private const string Host = "echo.shop.svc.cluster.local";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static TracingOptions Export(Uri endpoint, OtlpExportProtocol protocol, double? fallback = null) => new()
    {
        Endpoint = endpoint,
        Protocol = protocol,
        FallbackPercentage = fallback,
        ScheduleDelay = TimeSpan.FromMilliseconds(50),
        ExportTimeout = TimeSpan.FromSeconds(2),
    };

    [Fact]
    public async Task ServerAndClientSpansContinueTheCallersW3CTraceOverOtlpHttp()
    {
        await using var collector = await OtlpCollector.StartAsync(IPAddress.Loopback);
        await using var mesh = await WaypointMesh.StartAsync(tracing: Export(collector.HttpEndpoint, OtlpExportProtocol.HttpProtobuf));
        string traceId = Hex(16), parent = Hex(8);
        var r = await mesh.CurlAsync("/traced?x=1", "-H", $"traceparent: 00-{traceId}-{parent}-01", "-H", "tracestate: vendor=abc", "-A", "tracing-test/1");
        Assert.Equal(200, r.Status);

        var spans = await collector.WaitAsync(s => s.Count(x => x.TraceId == traceId) >= 2, Wait);
        var server = One(spans, traceId, Span.Types.SpanKind.Server);
        var client = One(spans, traceId, Span.Types.SpanKind.Client);
        Assert.Equal(parent, server.ParentSpanId);
        Assert.Equal(server.SpanId, client.ParentSpanId);
        // The backend continues the trace under the waypoint's client span, with the caller's tracestate.
        Assert.Equal($"00-{traceId}-{client.SpanId}-01", EchoHeader(r, "traceparent"));
        Assert.Equal("vendor=abc", EchoHeader(r, "tracestate"));

        Assert.Equal($"{Host}:80/*", server.Name);
        Assert.Equal($"{Host}:80/*", client.Name);
        Assert.Equal("http", server.Protocol);
        Assert.Equal("waypoint.shop", server.ResourceAttribute("service.name"));
        string requestId = EchoHeader(r, "x-request-id") ?? "";
        Assert.True(Guid.TryParse(requestId, out _), $"x-request-id upstream: '{requestId}'");
        foreach (var span in new[] { server, client })
        {
            Assert.Equal("proxy", span.Attribute("component"));
            Assert.Equal("waypoint", span.Attribute("istio.canonical_service"));
            Assert.Equal("shop", span.Attribute("istio.namespace"));
            Assert.Equal("GET", span.Attribute("http.method"));
            Assert.Equal($"http://{mesh.Vip}/traced?x=1", span.Attribute("http.url"));
            Assert.Equal("200", span.Attribute("http.status_code"));
            Assert.Equal("-", span.Attribute("response_flags"));
            Assert.Equal($"inbound-vip|80|http|{Host}", span.Attribute("upstream_cluster"));
            Assert.Equal(requestId, span.Attribute("guid:x-request-id"));
            Assert.StartsWith($"waypoint~{mesh.WaypointIp}~waypoint.shop~", span.Attribute("node_id"), StringComparison.Ordinal);
        }
        Assert.Equal("tracing-test/1", server.Attribute("user_agent"));
        Assert.Equal(mesh.Client.ToString(), server.Attribute("peer.address"));
        Assert.Contains(client.Attribute("peer.address"), new[] { $"{mesh.EchoV1}:{mesh.V1.EndPoint.Port}", $"{mesh.EchoV2}:{mesh.V2.EndPoint.Port}" });
        Assert.True(long.Parse(server.Attribute("response_size")!, System.Globalization.CultureInfo.InvariantCulture) > 0);

        // What the demo prints (perf/otlp-receiver): the client span indented under the server span.
        string tree = SpanTree.Render([.. spans.Where(s => s.TraceId == traceId)]);
        Assert.StartsWith($"trace {traceId}\n  {Host}:80/* [server] waypoint.shop ", tree, StringComparison.Ordinal);
        Assert.Contains($"parent={parent} (not received)", tree, StringComparison.Ordinal);
        Assert.Contains($"\n    {Host}:80/* [client] waypoint.shop ", tree, StringComparison.Ordinal);
    }

    [Fact]
    public async Task B3InIsPropagatedAndFlagsAreTaggedOverOtlpGrpc()
    {
        await using var collector = await OtlpCollector.StartAsync(IPAddress.Loopback);
        await using var mesh = await WaypointMesh.StartAsync("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: echo, namespace: shop}
            spec:
              hosts: [echo.shop.svc.cluster.local]
              http:
              - match: [{uri: {prefix: /abort}}]
                fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
                route: [{destination: {host: echo.shop.svc.cluster.local}}]
              - route: [{destination: {host: echo.shop.svc.cluster.local}}]
            """, tracing: Export(collector.GrpcEndpoint, OtlpExportProtocol.Grpc));

        // B3 multi header in: the same trace goes on, upstream gets B3 multi (and W3C) naming the client span.
        string multiTrace = Hex(16), multiParent = Hex(8);
        var multi = await mesh.CurlAsync("/b3-multi", "-H", $"X-B3-TraceId: {multiTrace}", "-H", $"X-B3-SpanId: {multiParent}", "-H", "X-B3-Sampled: 1");
        Assert.Equal(200, multi.Status);
        // B3 single header in.
        string singleTrace = Hex(16), singleParent = Hex(8);
        var single = await mesh.CurlAsync("/b3-single", "-H", $"b3: {singleTrace}-{singleParent}-1");
        Assert.Equal(200, single.Status);
        // A fault: only the server span, failed, with Envoy's flag.
        string faultTrace = Hex(16);
        var fault = await mesh.CurlAsync("/abort", "-H", $"traceparent: 00-{faultTrace}-{Hex(8)}-01");
        Assert.Equal(503, fault.Status);

        var spans = await collector.WaitAsync(s =>
            s.Count(x => x.TraceId == multiTrace) >= 2 && s.Count(x => x.TraceId == singleTrace) >= 2 && s.Any(x => x.TraceId == faultTrace), Wait);
        Assert.All(spans, s => Assert.Equal("grpc", s.Protocol));

        var multiServer = One(spans, multiTrace, Span.Types.SpanKind.Server);
        var multiClient = One(spans, multiTrace, Span.Types.SpanKind.Client);
        Assert.Equal(multiParent, multiServer.ParentSpanId);
        Assert.Equal(multiServer.SpanId, multiClient.ParentSpanId);
        Assert.Equal(multiTrace, EchoHeader(multi, "X-B3-TraceId"));
        Assert.Equal(multiClient.SpanId, EchoHeader(multi, "X-B3-SpanId"));
        Assert.Equal("1", EchoHeader(multi, "X-B3-Sampled"));
        Assert.Equal($"00-{multiTrace}-{multiClient.SpanId}-01", EchoHeader(multi, "traceparent"));

        var singleServer = One(spans, singleTrace, Span.Types.SpanKind.Server);
        var singleClient = One(spans, singleTrace, Span.Types.SpanKind.Client);
        Assert.Equal(singleParent, singleServer.ParentSpanId);
        Assert.Equal($"{singleTrace}-{singleClient.SpanId}-1", EchoHeader(single, "b3"));
        Assert.Null(EchoHeader(single, "X-B3-TraceId"));

        var faultServer = One(spans, faultTrace, Span.Types.SpanKind.Server);
        Assert.DoesNotContain(spans, s => s.TraceId == faultTrace && s.Kind == Span.Types.SpanKind.Client);
        Assert.Equal("FI", faultServer.Attribute("response_flags"));
        Assert.Equal("503", faultServer.Attribute("http.status_code"));
        Assert.Equal("true", faultServer.Attribute("error"));
        Assert.Equal(Status.Types.StatusCode.Error, faultServer.Span.Status.Code);
        Assert.True(collector.GrpcRequests > 0 && collector.HttpRequests == 0);
    }

    [Fact]
    public async Task TelemetryResourceSetsSamplingLive()
    {
        await using var collector = await OtlpCollector.StartAsync(IPAddress.Loopback);
        // The fallback (no Telemetry) would sample everything; the resources below must win over it.
        await using var mesh = await WaypointMesh.StartAsync(Telemetry("shop", "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]", 100),
            tracing: Export(collector.HttpEndpoint, OtlpExportProtocol.HttpProtobuf, fallback: 100));
        var tracing = mesh.Waypoint.Services.GetRequiredService<WaypointTracing>();

        // 100%: a trace that starts at the waypoint is sampled and exported; upstream sees the sampled flag.
        var sampled = await mesh.CurlAsync("/sampled");
        Assert.Equal(200, sampled.Status);
        string sampledParent = EchoHeader(sampled, "traceparent") ?? "";
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", sampledParent);
        string sampledTrace = sampledParent[3..35];
        var spans = await collector.WaitAsync(s => s.Count(x => x.TraceId == sampledTrace) >= 2, Wait);
        Assert.Empty(One(spans, sampledTrace, Span.Types.SpanKind.Server).ParentSpanId);

        // 0% for the namespace, and the targeted one removed: nothing is sampled, the context still goes upstream.
        await mesh.ApplyAsync(Telemetry("shop", "", 0));
        var unsampled = await mesh.CurlAsync("/unsampled");
        Assert.Equal(200, unsampled.Status);
        string unsampledParent = EchoHeader(unsampled, "traceparent") ?? "";
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-00$", unsampledParent);
        // A caller's sampled flag still wins over the percentage (parent-based).
        string callerTrace = Hex(16);
        var fromCaller = await mesh.CurlAsync("/caller-sampled", "-H", $"traceparent: 00-{callerTrace}-{Hex(8)}-01");
        Assert.EndsWith("-01", EchoHeader(fromCaller, "traceparent"), StringComparison.Ordinal);
        Assert.True(tracing.Flush(Wait), "the span queue did not drain");
        await collector.WaitAsync(s => s.Count(x => x.TraceId == callerTrace) >= 2, Wait);
        Assert.DoesNotContain(collector.Spans, s => s.TraceId == unsampledParent[3..35]);
    }

    [Fact]
    public async Task ServiceTelemetryAddsCustomTagsAndDisableSpanReportingKeepsPropagation()
    {
        const string Variable = "AMBIENT_WAYPOINT_TEST_TEAM_TAG";
        Environment.SetEnvironmentVariable(Variable, "from-env");
        try
        {
            await using var collector = await OtlpCollector.StartAsync(IPAddress.Loopback);
            // The waypoint (its Gateway) says: report nothing. The Service says: report, with these tags. The Service wins.
            const string Gateway = "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]";
            const string Service = "targetRefs: [{kind: Service, name: echo}]";
            string namespaceWide = Resource("ns", "", "customTags: {scope: {literal: {value: namespace}}, team: {literal: {value: overridden}}}");
            string quiet = Resource("gw", Gateway, "disableSpanReporting: true");
            string tagged = Resource("svc", Service, $$$"""
                disableSpanReporting: false
                    customTags:
                      team: {environment: {name: {{{Variable}}}}}
                      tier: {header: {name: x-tier, defaultValue: none}}
                      missing: {header: {name: x-absent}}
                      fixed: {literal: {value: payments}}
                """);
            await using var mesh = await WaypointMesh.StartAsync(namespaceWide + "\n---\n" + quiet,
                tracing: Export(collector.HttpEndpoint, OtlpExportProtocol.HttpProtobuf, fallback: 100));
            var tracing = mesh.Waypoint.Services.GetRequiredService<WaypointTracing>();

            // Reporting disabled: the spans are made and sampled (the backend sees the waypoint's sampled context), not exported.
            var quietReply = await mesh.CurlAsync("/quiet");
            Assert.Equal(200, quietReply.Status);
            string quietParent = EchoHeader(quietReply, "traceparent") ?? "";
            Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", quietParent);

            await mesh.ApplyAsync(string.Join("\n---\n", namespaceWide, quiet, tagged));
            var gold = await mesh.CurlAsync("/tagged", "-H", "x-tier: gold");
            var plain = await mesh.CurlAsync("/tagged");
            Assert.Equal(200, gold.Status);
            Assert.Equal(200, plain.Status);
            string goldTrace = (EchoHeader(gold, "traceparent") ?? "")[3..35], plainTrace = (EchoHeader(plain, "traceparent") ?? "")[3..35];
            var spans = await collector.WaitAsync(x => x.Count(s => s.TraceId == goldTrace || s.TraceId == plainTrace) >= 4, Wait);
            foreach (var kind in new[] { Span.Types.SpanKind.Server, Span.Types.SpanKind.Client })
            {
                var g = One(spans, goldTrace, kind);
                Assert.Equal("from-env", g.Attribute("team"));   // the Service's tag replaces the namespace's, tag by tag
                Assert.Equal("namespace", g.Attribute("scope")); // the namespace's other tag stays
                Assert.Equal("gold", g.Attribute("tier"));
                Assert.Equal("payments", g.Attribute("fixed"));
                Assert.Null(g.Attribute("missing"));            // no header, no default: no tag
                Assert.Equal("none", One(spans, plainTrace, kind).Attribute("tier"));
            }
            Assert.True(tracing.Flush(Wait), "the span queue did not drain");
            Assert.DoesNotContain(collector.Spans, s => s.TraceId == quietParent[3..35]);
        }
        finally
        {
            Environment.SetEnvironmentVariable(Variable, null);
        }

        static string Resource(string name, string target, string tracing) => $$"""
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: t-{{name}}, namespace: shop}
            spec:
              {{target}}
              tracing:
              - {{tracing}}
            """;
    }

    [Fact]
    public async Task AnUnreachableCollectorNeverFailsRequestsAndCountsDrops()
    {
        int closedPort;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            closedPort = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }
        var options = Export(new Uri($"http://127.0.0.1:{closedPort}/v1/traces"), OtlpExportProtocol.HttpProtobuf, fallback: 100) with
        {
            MaxQueueSize = 2,
            MaxExportBatchSize = 1,
        };
        await using var mesh = await WaypointMesh.StartAsync(tracing: options);
        for (int i = 0; i < 8; i++)
        {
            var r = await mesh.CurlAsync($"/lost/{i}");
            Assert.Equal(200, r.Status);
            Assert.EndsWith("-01", EchoHeader(r, "traceparent"), StringComparison.Ordinal);
        }
        var metrics = mesh.Waypoint.Services.GetRequiredService<WaypointMetrics>();
        string text = "";
        var deadline = DateTime.UtcNow + Wait;
        // 16 spans were sampled; each is either refused by the full queue or lost in a failed export.
        while (Dropped(text) < 16)
        {
            Assert.True(DateTime.UtcNow < deadline, $"drops not counted:\n{text}");
            await Task.Delay(50);
            text = metrics.Render();
        }
        Assert.Contains("ambient_waypoint_spans_exported_total 0\n", text, StringComparison.Ordinal);
    }

    private static long Dropped(string metrics)
    {
        long n = 0;
        foreach (var line in metrics.Split('\n'))
        {
            if (line.StartsWith("ambient_waypoint_spans_dropped_total{", StringComparison.Ordinal))
            {
                n += long.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        return n;
    }

    private static string Telemetry(string ns, string target, double percentage) => $$"""
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata: {name: tracing, namespace: {{ns}}}
        spec:
          {{target}}
          tracing:
          - randomSamplingPercentage: {{percentage}}
        """;

    private static ReceivedSpan One(IReadOnlyList<ReceivedSpan> spans, string traceId, Span.Types.SpanKind kind) =>
        Assert.Single(spans, s => s.TraceId == traceId && s.Kind == kind);

    /// <summary>A header the echo backend received (it echoes them as <c>h-name</c>; names compared without case).</summary>
    private static string? EchoHeader(Curl.Result r, string name)
    {
        foreach (var line in r.Body.Split('\n'))
        {
            int colon = line.IndexOf(": ", StringComparison.Ordinal);
            if (colon > 0 && line[..colon].Equals("h-" + name, StringComparison.OrdinalIgnoreCase))
            {
                return line[(colon + 2)..].TrimEnd('\r');
            }
        }
        return null;
    }

    private static string Hex(int bytes) => Convert.ToHexStringLower(RandomBytes(bytes));

    private static byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        Random.Shared.NextBytes(b);
        b[0] |= 1; // never all zeroes (an invalid id)
        return b;
    }
}
