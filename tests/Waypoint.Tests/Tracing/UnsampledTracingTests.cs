using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Sources;
using Ambient.Waypoint.Hbone;
using Ambient.Waypoint.Telemetry.Tracing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Exporter;
using Xunit;

namespace Ambient.Waypoint.Tests.Tracing;

/// <summary>
/// The unsampled fast path: sampling is decided before any span exists, an unsampled request makes no Activity and
/// sends upstream what Envoy sends (the trace goes on under a new span id with the sampled flag 0, in W3C and the B3
/// forms the caller used, tracestate kept), and a sampled request is traced as before.
/// </summary>
public sealed class UnsampledTracingTests : IDisposable
{
    private static readonly TunnelInfo Tunnel = new(new SpiffeId("cluster.local", "shop", "client"), new IPEndPoint(IPAddress.Loopback, 40000),
        new IPEndPoint(IPAddress.Loopback, 80), null, null, null);

    private readonly List<WaypointTracing> _made = [];

    public void Dispose()
    {
        foreach (var t in _made)
        {
            t.Dispose();
        }
    }

    /// <summary>
    /// A waypoint's tracing with export on (to a closed loopback port: nothing these tests sample needs to arrive),
    /// a name of its own so its spans are told apart from other tests' by node id.
    /// </summary>
    private WaypointTracing Make(double fallback, bool ignoreParent = false, string? telemetry = null)
    {
        int closedPort;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            closedPort = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }
        var options = new TracingOptions
        {
            Endpoint = new Uri($"http://127.0.0.1:{closedPort}/v1/traces"),
            Protocol = OtlpExportProtocol.HttpProtobuf,
            FallbackPercentage = fallback,
            FallbackIgnoresParent = ignoreParent,
            ExportTimeout = TimeSpan.FromSeconds(1),
        };
        var identity = new WaypointIdentity("shop", "wp-" + Guid.NewGuid().ToString("N")[..8], "cluster.local", IPAddress.Loopback);
        var store = new MeshStore(NullLogger<MeshStore>.Instance);
        if (telemetry is not null)
        {
            store.AddSource("test", 10).Replace(Support.Snapshots.Resources(telemetry));
        }
        var tracing = new WaypointTracing(options, identity, store);
        _made.Add(tracing);
        return tracing;
    }

    /// <summary>One request through the tracing calls the proxy makes, returning its server span and the upstream's headers.</summary>
    private static (Activity? Server, Activity? Client, HttpRequestMessage Upstream) Forward(WaypointTracing tracing, params string[] headers)
    {
        var context = new DefaultHttpContext();
        using var upstream = new HttpRequestMessage(HttpMethod.Get, "http://127.0.0.1/");
        foreach (var h in headers)
        {
            int colon = h.IndexOf(':', StringComparison.Ordinal);
            context.Request.Headers.Append(h[..colon], h[(colon + 1)..].Trim());
            // The forwarder copies the caller's headers before the transformer and the handlers run.
            upstream.Headers.TryAddWithoutValidation(h[..colon], h[(colon + 1)..].Trim());
        }
        var server = tracing.StartServer(context, Tunnel);
        var client = tracing.StartClient("echo.shop.svc.cluster.local", 80);
        WaypointTracing.InjectUnsampled(context, upstream);
        tracing.Inject(upstream);
        client?.Stop();
        server?.Stop();
        var copy = new HttpRequestMessage();
        foreach (var (name, values) in upstream.Headers)
        {
            copy.Headers.TryAddWithoutValidation(name, values);
        }
        return (server, client, copy);
    }

    private static string? Header(HttpRequestMessage m, string name) =>
        m.Headers.TryGetValues(name, out var v) ? string.Join(",", v) : null;

    private static string Hex(int bytes)
    {
        var b = new byte[bytes];
        Random.Shared.NextBytes(b);
        b[0] |= 1;
        return Convert.ToHexStringLower(b);
    }

    /// <summary>Counts the Activities a tracing instance starts (a listener sees every span of the source, sampled or not).</summary>
    private sealed class SpanCounter : IDisposable
    {
        private readonly ActivityListener _listener;
        private int _count;

        public SpanCounter(WaypointTracing tracing)
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = s => s.Name == WaypointTracing.SourceName,
                ActivityStarted = a =>
                {
                    if (a.GetTagItem(WaypointSampler.NodeIdTag) as string == tracing.NodeId)
                    {
                        Interlocked.Increment(ref _count);
                    }
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public int Count => Volatile.Read(ref _count);

        public void Dispose() => _listener.Dispose();
    }

    [Fact]
    public void ANewUnsampledTraceMakesNoSpanAndGoesUpstreamWithFlagZero()
    {
        var tracing = Make(fallback: 0);
        using var counter = new SpanCounter(tracing);
        var (server, client, upstream) = Forward(tracing);
        Assert.Null(server);
        Assert.Null(client);
        Assert.Equal(0, counter.Count);
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-00$", Header(upstream, "traceparent"));
        Assert.Null(Header(upstream, "tracestate"));
        Assert.Null(Header(upstream, "b3"));
        Assert.Null(Header(upstream, "X-B3-TraceId"));
        // Two requests are two traces.
        Assert.NotEqual(Header(upstream, "traceparent")![3..35], Header(Forward(tracing).Upstream, "traceparent")![3..35]);
    }

    [Fact]
    public void AnUnsampledW3CCallerKeepsItsTraceAndTracestateUnderANewSpan()
    {
        // 100% for new traces: the caller's "not sampled" still wins (parent-based).
        var tracing = Make(fallback: 100);
        using var counter = new SpanCounter(tracing);
        string trace = Hex(16), parent = Hex(8);
        var (server, _, upstream) = Forward(tracing, $"traceparent: 00-{trace}-{parent}-00", "tracestate: vendor=abc,other=1");
        Assert.Null(server);
        Assert.Equal(0, counter.Count);
        string traceparent = Header(upstream, "traceparent")!;
        Assert.Matches($"^00-{trace}-[0-9a-f]{{16}}-00$", traceparent);
        Assert.NotEqual(parent, traceparent[36..52]);
        Assert.Equal("vendor=abc,other=1", Header(upstream, "tracestate"));
        Assert.Null(Header(upstream, "b3"));
    }

    [Fact]
    public void AnUnsampledB3SingleCallerGetsB3SingleWithFlagZero()
    {
        var tracing = Make(fallback: 100);
        string trace = Hex(16), parent = Hex(8);
        var (server, _, upstream) = Forward(tracing, $"b3: {trace}-{parent}-0");
        Assert.Null(server);
        string traceparent = Header(upstream, "traceparent")!;
        Assert.Matches($"^00-{trace}-[0-9a-f]{{16}}-00$", traceparent);
        string span = traceparent[36..52];
        Assert.NotEqual(parent, span);
        Assert.Equal($"{trace}-{span}-0", Header(upstream, "b3"));
        Assert.Null(Header(upstream, "X-B3-TraceId"));
    }

    [Fact]
    public void AnUnsampledB3MultiCallerGetsB3MultiWithSampledZero()
    {
        var tracing = Make(fallback: 100);
        string trace = Hex(16), parent = Hex(8);
        var (server, _, upstream) = Forward(tracing,
            $"X-B3-TraceId: {trace}", $"X-B3-SpanId: {parent}", $"X-B3-ParentSpanId: {Hex(8)}", "X-B3-Sampled: 0");
        Assert.Null(server);
        string traceparent = Header(upstream, "traceparent")!;
        Assert.Matches($"^00-{trace}-[0-9a-f]{{16}}-00$", traceparent);
        string span = traceparent[36..52];
        Assert.NotEqual(parent, span);
        Assert.Equal(trace, Header(upstream, "X-B3-TraceId"));
        Assert.Equal(span, Header(upstream, "X-B3-SpanId"));
        Assert.Equal("0", Header(upstream, "X-B3-Sampled"));
        Assert.Null(Header(upstream, "X-B3-ParentSpanId"));
        Assert.Null(Header(upstream, "b3"));
    }

    /// <summary>A Telemetry resource for the whole namespace of the waypoints <see cref="Make"/> builds.</summary>
    private static string Telemetry(string tracing) => $$"""
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata: {name: tracing, namespace: shop}
        spec:
          tracing: [{{{tracing}}}]
        """;

    [Theory]
    // Envoy: the first 8 hex digits of x-request-id, modulo 10,000, against the percentage in hundredths of a percent.
    [InlineData("00000001-0000-4000-8000-000000000000", 1, true)]
    [InlineData("00000063-0000-4000-8000-000000000000", 1, true)] // 99 < 100
    [InlineData("00000064-0000-4000-8000-000000000000", 1, false)] // 100
    [InlineData("00002710-0000-4000-8000-000000000000", 1, true)] // 10,000 % 10,000 = 0
    [InlineData("ffffffff-0000-4000-8000-000000000000", 73, true)] // 4,294,967,295 % 10,000 = 7,295 < 7,300
    [InlineData("ffffffff-0000-4000-8000-000000000000", 72.95, false)]
    [InlineData("0000ffff-0000-4000-8000-000000000000", 100, true)]
    [InlineData("00000000-0000-4000-8000-000000000000", 0, false)]
    public void ARequestIdDecidesAsInEnvoy(string requestId, double percentage, bool sampled) =>
        Assert.Equal(sampled, WaypointSampler.IsSampledByRequestId(requestId, percentage));

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("my-request-42")]
    public void ARequestIdThatIsNoUuidLeavesTheDecisionToTheTraceId(string requestId) =>
        Assert.Null(WaypointSampler.IsSampledByRequestId(requestId, 50));

    [Fact]
    public void UnderATelemetryPercentageANewTraceIsSampledByItsRequestId()
    {
        // useRequestIdForTraceSampling is Istio's default: at 1%, the same request id is decided the same way every
        // time (by every proxy that sees it), whatever trace id the waypoint makes for it.
        var tracing = Make(fallback: 0, telemetry: Telemetry("randomSamplingPercentage: 1"));
        for (int i = 0; i < 20; i++)
        {
            var (server, client, upstream) = Forward(tracing, "x-request-id: 00000001-0000-4000-8000-000000000000");
            Assert.NotNull(server);
            Assert.True(server.Recorded);
            Assert.EndsWith($"-{client!.SpanId.ToHexString()}-01", Header(upstream, "traceparent"), StringComparison.Ordinal);
            var (notSampled, _, upstream2) = Forward(tracing, "x-request-id: 0000ffff-0000-4000-8000-000000000000");
            Assert.Null(notSampled);
            Assert.EndsWith("-00", Header(upstream2, "traceparent"), StringComparison.Ordinal);
        }
        // A caller's decision still wins over the request id.
        var (child, _, _) = Forward(tracing, $"traceparent: 00-{Hex(16)}-{Hex(8)}-00", "x-request-id: 00000001-0000-4000-8000-000000000000");
        Assert.Null(child);
    }

    [Fact]
    public void UseRequestIdForTraceSamplingFalseDecidesByTheTraceId()
    {
        var tracing = Make(fallback: 0, telemetry: Telemetry("randomSamplingPercentage: 50, useRequestIdForTraceSampling: false"));
        int sampled = 0;
        for (int i = 0; i < 40; i++)
        {
            // This request id alone would be sampled every time.
            var (server, _, _) = Forward(tracing, "x-request-id: 00000001-0000-4000-8000-000000000000");
            if (server is not null)
            {
                sampled++;
                Assert.True(WaypointSampler.IsSampled(server.TraceId, 50), $"{server.TraceId} was sampled outside the 50% share");
            }
        }
        // 40 fair coins: neither all nor none (each has probability 2^-40).
        Assert.True(sampled is > 0 and < 40, $"{sampled} of 40 sampled");
    }

    [Fact]
    public void TraceIdRatioIgnoresTheCallersSampledFlag()
    {
        // OTEL_TRACES_SAMPLER=traceidratio at 0: a caller's "sampled" does not make this waypoint sample.
        var tracing = Make(fallback: 0, ignoreParent: true);
        using var counter = new SpanCounter(tracing);
        string trace = Hex(16);
        var (server, _, upstream) = Forward(tracing, $"traceparent: 00-{trace}-{Hex(8)}-01");
        Assert.Null(server);
        Assert.Equal(0, counter.Count);
        Assert.Matches($"^00-{trace}-[0-9a-f]{{16}}-00$", Header(upstream, "traceparent"));
    }

    [Fact]
    public void ASampledCallerIsTracedAsBefore()
    {
        // 0% for new traces: the caller's "sampled" wins, and both spans are made.
        var tracing = Make(fallback: 0);
        using var counter = new SpanCounter(tracing);
        string trace = Hex(16), parent = Hex(8);
        var (server, client, upstream) = Forward(tracing, $"traceparent: 00-{trace}-{parent}-01", "tracestate: vendor=abc", $"b3: {trace}-{parent}-1");
        Assert.NotNull(server);
        Assert.NotNull(client);
        Assert.Equal(2, counter.Count);
        Assert.True(server.Recorded);
        Assert.Equal(trace, server.TraceId.ToHexString());
        Assert.Equal(parent, server.ParentSpanId.ToHexString());
        Assert.Equal(server.SpanId, client.ParentSpanId);
        string span = client.SpanId.ToHexString();
        Assert.Equal($"00-{trace}-{span}-01", Header(upstream, "traceparent"));
        Assert.Equal("vendor=abc", Header(upstream, "tracestate"));
        Assert.Equal($"{trace}-{span}-1", Header(upstream, "b3"));
    }

    [Fact]
    public void ANewTraceIsDecidedOnTheIdItGoesOutWith()
    {
        // Every replica must decide a trace the same way, so a span's trace id must be the one its decision used:
        // sampled roots have ids in the sampled share, unsampled ones (sent upstream with flag 0) outside it.
        var tracing = Make(fallback: 50);
        int sampled = 0, unsampled = 0;
        for (int i = 0; i < 400; i++)
        {
            var (server, client, upstream) = Forward(tracing);
            string traceparent = Header(upstream, "traceparent")!;
            var traceId = ActivityTraceId.CreateFromString(traceparent.AsSpan(3, 32));
            if (server is not null)
            {
                sampled++;
                Assert.Equal(default, server.ParentSpanId);
                Assert.Equal(server.TraceId, traceId);
                Assert.EndsWith($"-{client!.SpanId.ToHexString()}-01", traceparent, StringComparison.Ordinal);
                Assert.True(WaypointSampler.IsSampled(traceId, 50), $"{traceId} was sampled outside the 50% share");
            }
            else
            {
                unsampled++;
                Assert.EndsWith("-00", traceparent, StringComparison.Ordinal);
                Assert.False(WaypointSampler.IsSampled(traceId, 50), $"{traceId} was not sampled inside the 50% share");
            }
        }
        // 400 fair coins: both outcomes occur (all one way has probability 2^-399).
        Assert.True(sampled > 0 && unsampled > 0, $"{sampled} sampled, {unsampled} not");
    }

    [Fact]
    public void AnUnsampledRequestAllocatesLittle()
    {
        var tracing = Make(fallback: 0);
        const int N = 1000;
        var contexts = new DefaultHttpContext[N + 10];
        var requests = new HttpRequestMessage[N + 10];
        for (int i = 0; i < contexts.Length; i++)
        {
            contexts[i] = new DefaultHttpContext();
            // Kestrel's request features are reused per connection; allocate the collection's storage up front here too.
            contexts[i].Features.Set(new object());
            requests[i] = new HttpRequestMessage(HttpMethod.Get, "http://127.0.0.1/");
        }
        for (int i = 0; i < 10; i++)
        {
            Once(N + i);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < N; i++)
        {
            Once(i);
        }
        long perRequest = (GC.GetAllocatedBytesForCurrentThread() - before) / N;
        foreach (var r in requests)
        {
            r.Dispose();
        }
        // The feature, two ids, the traceparent text and the upstream message's header storage: 464 bytes when
        // written. The path it replaces (a propagation-only root Activity made by the SDK, a second sampling call for
        // the client span, re-injection through the propagators) allocated 1,272 bytes per request in this same loop
        // (main at f1393fb). Half of that is the bound.
        Assert.True(perRequest < 636, $"{perRequest} bytes allocated per unsampled request");

        void Once(int i)
        {
            var server = tracing.StartServer(contexts[i], Tunnel);
            var client = tracing.StartClient("echo.shop.svc.cluster.local", 80);
            WaypointTracing.InjectUnsampled(contexts[i], requests[i]);
            tracing.Inject(requests[i]);
            client?.Stop();
            server?.Stop();
        }
    }
}
