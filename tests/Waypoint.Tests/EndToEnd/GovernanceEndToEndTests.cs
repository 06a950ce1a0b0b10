using Ambient.Waypoint.Telemetry;
using Ambient.Waypoint.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// Governance through client -> ztunnel -> waypoint -> ztunnel -> backend with curl: rate limits, fault injection,
/// timeouts, retries, outlier ejection and circuit breaking, each configured by the resource users know and seen in
/// the status, the access log's response flags and the metrics.
/// </summary>
public sealed class GovernanceEndToEndTests
{
    private const string Host = "echo.shop.svc.cluster.local";

    // The start of a VirtualService / DestinationRule for the echo service; each test appends its routes or policy.
    private const string VirtualServiceHead = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: echo, namespace: shop}
        spec:
          hosts: [echo.shop.svc.cluster.local]
          http:

        """;

    private const string DestinationRuleHead = """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: echo, namespace: shop}
        spec:
          host: echo.shop.svc.cluster.local
          trafficPolicy:

        """;

    [Fact]
    public async Task RateLimitPolicyOnTheServiceAnswers429WithFlagRL()
    {
        await using var mesh = await WaypointMesh.StartAsync("""
            apiVersion: policy.linkerd.io/v1alpha1
            kind: HTTPLocalRateLimitPolicy
            metadata: {name: echo-rl, namespace: shop}
            spec:
              targetRef: {group: "", kind: Service, name: echo}
              total: {requestsPerSecond: 1}
            """);
        // One token per second with a burst of one: eight requests in well under eight seconds meet an empty bucket.
        var statuses = new List<int>();
        for (int i = 0; i < 8; i++)
        {
            statuses.Add((await mesh.CurlAsync($"/rl/{i}")).Status);
        }
        int limited = statuses.Count(s => s == 429);
        Assert.True(limited > 0 && statuses.Contains(200), $"statuses {string.Join(",", statuses)}\n{mesh.WaypointLog}");
        Assert.All(statuses, s => Assert.True(s is 200 or 429, $"unexpected {s}"));
        string log = mesh.WaypointLog.ToString();
        Assert.Equal(limited, CountLines(log, "\" 429 RL "));
        Assert.Contains("HTTPLocalRateLimitPolicy shop/echo-rl: total limit reached", log, StringComparison.Ordinal);
        string metrics = Metrics(mesh);
        Assert.Contains($"ambient_rate_limited_total{{destination_service=\"{Host}\",limit=\"total\"}} {limited}", metrics, StringComparison.Ordinal);
        Assert.Contains("response_code=\"429\"", metrics, StringComparison.Ordinal);
        Assert.Contains("response_flags=\"RL\"", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VirtualServiceFaultsAbortAndDelay()
    {
        await using var mesh = await WaypointMesh.StartAsync(VirtualServiceHead + """
              - match: [{uri: {prefix: /abort}}]
                fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
                route: [{destination: {host: echo.shop.svc.cluster.local}}]
              - match: [{uri: {prefix: /grpc-abort}}]
                fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
                route: [{destination: {host: echo.shop.svc.cluster.local}}]
              - match: [{uri: {prefix: /delay}}]
                fault: {delay: {fixedDelay: 50ms, percentage: {value: 100}}}
                route: [{destination: {host: echo.shop.svc.cluster.local}}]
              - route: [{destination: {host: echo.shop.svc.cluster.local}}]
            """);
        var abort = await mesh.CurlAsync("/abort");
        Assert.True(abort.Status == 418, $"{abort.Status} {abort.Body}\n{mesh.WaypointLog}");
        Assert.Equal("fault filter abort", abort.Body);

        var grpc = await mesh.CurlAsync("/grpc-abort", "--http2-prior-knowledge");
        Assert.Equal(200, grpc.Status);
        Assert.Equal("14", grpc.Header("grpc-status"));

        var delayed = await mesh.CurlAsync("/delay");
        Assert.Equal(200, delayed.Status);
        Assert.StartsWith("echo-v", delayed.Echo("backend"));

        string log = mesh.WaypointLog.ToString();
        Assert.Contains("\"GET /abort HTTP/1.1\" 418 FI ", log, StringComparison.Ordinal);
        Assert.Contains("\"GET /delay HTTP/1.1\" 200 DI ", log, StringComparison.Ordinal);
        Assert.Contains("response_flags=\"FI\"", Metrics(mesh), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RouteTimeoutsAnswer504WithFlagUT()
    {
        using var release = new CancellationTokenSource();
        await using var mesh = await WaypointMesh.StartAsync(VirtualServiceHead + """
              - route: [{destination: {host: echo.shop.svc.cluster.local}}]
                timeout: 300ms
            """);
        Func<HttpContext, Task<bool>> slow = async context =>
        {
            if (!context.Request.Path.StartsWithSegments("/slow"))
            {
                return false;
            }
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(20), release.Token);
            }
            catch (OperationCanceledException)
            {
            }
            return true;
        };
        mesh.V1.Script = slow;
        mesh.V2.Script = slow;
        try
        {
            var r = await mesh.CurlAsync("/slow");
            Assert.True(r.Status == 504, $"{r.Status} {r.Body}\n{mesh.WaypointLog}");
            Assert.Equal(200, (await mesh.CurlAsync("/fast")).Status);
            await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"GET /slow HTTP/1.1\" 504 UT ");

            // Gateway API: timeouts.backendRequest bounds each try, timeouts.request the whole exchange.
            await mesh.ApplyAsync("""
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: echo, namespace: shop}
                spec:
                  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
                  rules:
                  - backendRefs: [{name: echo, port: 80}]
                    timeouts: {request: 2s, backendRequest: 200ms}
                """);
            var r2 = await mesh.CurlAsync("/slow/route");
            Assert.True(r2.Status == 504, $"{r2.Status} {r2.Body}\n{mesh.WaypointLog}");
            await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"GET /slow/route HTTP/1.1\" 504 UT");
        }
        finally
        {
            release.Cancel();
        }
    }

    [Fact]
    public async Task RetriesMakeAFailingEndpointInvisibleAndResendTheBody()
    {
        await using var mesh = await WaypointMesh.StartAsync(VirtualServiceHead + """
              - route: [{destination: {host: echo.shop.svc.cluster.local}}]
                retries: {attempts: 2, retryOn: 5xx}
            """);
        int failed = 0;
        mesh.V1.Script = async context =>
        {
            Interlocked.Increment(ref failed);
            context.Response.StatusCode = 503;
            await context.Response.WriteAsync("v1 is down");
            return true;
        };
        for (int i = 0; i < 10; i++)
        {
            var r = await mesh.CurlAsync($"/post/{i}", "-d", "hello");
            Assert.True(r.Status == 200, $"{r.Status} {r.Body}\n{mesh.WaypointLog}");
            Assert.Equal("echo-v2", r.Echo("backend"));
            Assert.Equal("5", r.Echo("body-bytes"));
        }
        Assert.True(failed > 0, "the load balancer never picked v1 in ten requests");

        string metrics = Metrics(mesh);
        Assert.Contains($"ambient_retries_total{{destination_service=\"{Host}\",result=\"retried\"}} {failed}", metrics, StringComparison.Ordinal);

        // Every request gets an x-request-id (kept across its retries); one the client sent is kept.
        var ids = new List<string?>();
        mesh.V1.Script = async context =>
        {
            ids.Add(context.Request.Headers["x-request-id"].ToString());
            context.Response.StatusCode = 503;
            await context.Response.WriteAsync("v1 is down");
            return true;
        };
        for (int i = 0; i < 10 && ids.Count == 0; i++)
        {
            var r = await mesh.CurlAsync($"/id/{i}");
            Assert.True(Guid.TryParse(r.Echo("h-x-request-id"), out _), r.Body);
            if (ids.Count > 0)
            {
                Assert.Equal(ids[0], r.Echo("h-x-request-id"));
            }
        }
        Assert.Equal("client-id-1", (await mesh.CurlAsync("/id/given", "-H", "x-request-id: client-id-1")).Echo("h-x-request-id"));

        // Both endpoints failing: the attempts run out and the last answer stands, flagged URX.
        mesh.V2.Script = mesh.V1.Script;
        var down = await mesh.CurlAsync("/down");
        Assert.Equal(503, down.Status);
        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"GET /down HTTP/1.1\" 503 URX ");
    }

    [Fact]
    public async Task OutlierDetectionEjectsTheFailingEndpoint()
    {
        await using var mesh = await WaypointMesh.StartAsync(DestinationRuleHead + """
                outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 5m, maxEjectionPercent: 50}
            """);
        mesh.V1.Script = async context =>
        {
            context.Response.StatusCode = 500;
            await context.Response.WriteAsync("v1 is broken");
            return true;
        };
        int i = 0;
        while ((await mesh.CurlAsync($"/until-v1/{i}")).Status != 500)
        {
            Assert.True(++i < 60, $"v1 never picked\n{mesh.WaypointLog}");
        }
        // One 5xx ejected v1: everything now goes to v2.
        for (int j = 0; j < 8; j++)
        {
            var r = await mesh.CurlAsync($"/after/{j}");
            Assert.True(r.Status == 200 && r.Echo("backend") == "echo-v2", $"{r.Status} {r.Body}\n{mesh.WaypointLog}");
        }
        string metrics = Metrics(mesh);
        Assert.Contains($"ambient_outlier_ejections_total{{destination_service=\"{Host}\",subset=\"\"}} 1", metrics, StringComparison.Ordinal);
        Assert.Contains($"ambient_outlier_ejected{{destination_service=\"{Host}\",port=\"80\",subset=\"\"}} 1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectionPoolLimitsFailFastWith503UO()
    {
        await using var mesh = await WaypointMesh.StartAsync(DestinationRuleHead + """
                connectionPool:
                  tcp: {maxConnections: 1}
                  http: {http1MaxPendingRequests: 1}
            """);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int held = 0;
        Func<HttpContext, Task<bool>> hold = async context =>
        {
            if (!context.Request.Path.StartsWithSegments("/hold"))
            {
                return false;
            }
            Interlocked.Increment(ref held);
            await gate.Task.WaitAsync(TimeSpan.FromSeconds(20));
            return true;
        };
        mesh.V1.Script = hold;
        mesh.V2.Script = hold;
        try
        {
            var first = mesh.CurlAsync("/hold/1");
            await TestWait.UntilAsync(() => Volatile.Read(ref held) == 1, "the first request at the backend");
            var second = mesh.CurlAsync("/hold/2");
            await TestWait.UntilAsync(() => Metrics(mesh).Contains("resource=\"pending\"} 0", StringComparison.Ordinal), "the second request pending");
            var third = await mesh.CurlAsync("/hold/3");
            Assert.True(third.Status == 503, $"{third.Status} {third.Body}\n{mesh.WaypointLog}");
            await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"GET /hold/3 HTTP/1.1\" 503 UO ");
            gate.SetResult();
            Assert.Equal(200, (await first.WaitAsync(TimeSpan.FromSeconds(30))).Status);
            Assert.Equal(200, (await second.WaitAsync(TimeSpan.FromSeconds(30))).Status);
            Assert.Equal(2, Volatile.Read(ref held));
            string metrics = Metrics(mesh);
            Assert.Contains($"ambient_circuit_breaker_overflow_total{{destination_service=\"{Host}\",subset=\"\"}} 1", metrics, StringComparison.Ordinal);
            Assert.Contains($"ambient_circuit_breaker_remaining{{destination_service=\"{Host}\",port=\"80\",subset=\"\",resource=\"connections\"}} 1", metrics, StringComparison.Ordinal);
        }
        finally
        {
            gate.TrySetResult();
        }
    }

    private static string Metrics(WaypointMesh mesh) => mesh.Waypoint.Services.GetRequiredService<WaypointMetrics>().Render();

    private static int CountLines(string log, string needle) => log.Split('\n').Count(l => l.Contains(needle, StringComparison.Ordinal));
}
