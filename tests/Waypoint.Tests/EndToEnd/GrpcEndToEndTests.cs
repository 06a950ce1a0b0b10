using System.Net;
using Ambient.Waypoint.Telemetry;
using Ambient.Waypoint.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// gRPC from another stack: a @grpc/grpc-js client in the client pod calls @grpc/grpc-js servers on the echo pods,
/// through ztunnel -> waypoint -> ztunnel. Status codes travel in trailers; the waypoint's metrics carry them.
/// </summary>
public sealed class GrpcEndToEndTests
{
    private const string Host = "grpc.shop.svc.cluster.local";

    private static async Task<(GrpcJs.Servers Servers, WaypointMesh Mesh)> StartAsync(string extra = "")
    {
        int slot = WaypointMesh.NextSlot();
        var (v1, v2) = WaypointMesh.EchoAddresses(slot);
        var servers = await GrpcJs.Servers.StartAsync(("echo-v1", v1), ("echo-v2", v2));
        try
        {
            var mesh = await WaypointMesh.StartAsync(extra, grpc: new WaypointMesh.GrpcPorts(servers.Ports["echo-v1"], servers.Ports["echo-v2"]), slot: slot);
            return (servers, mesh);
        }
        catch
        {
            await servers.DisposeAsync();
            throw;
        }
    }

    private static Task<IReadOnlyList<GrpcJs.Result>> CallAsync(WaypointMesh mesh, params object[] calls) =>
        GrpcJs.CallAsync(mesh.Client, mesh.AgentA.EndPoints["socks5"], new IPEndPoint(mesh.GrpcVip, 50051), calls);

    private static string Metrics(WaypointMesh mesh) => mesh.Waypoint.Services.GetRequiredService<WaypointMetrics>().Render();

    [GrpcJsFact]
    public async Task UnaryAndServerStreamingCallsCarryTheirStatusThroughTheWaypoint()
    {
        var (servers, mesh) = await StartAsync();
        await using var _ = servers;
        await using var __ = mesh;

        var results = await CallAsync(mesh,
            new { method = "Say", text = "hello", metadata = new Dictionary<string, string> { ["x-caller"] = "grpc-js" } },
            new { method = "Count", text = "n", count = 5 },
            new { method = "Say", text = "nope", fail_code = 5 },
            new { method = "Count", text = "half", count = 2, fail_code = 9 });
        string log = mesh.WaypointLog.ToString();

        var say = results[0];
        Assert.True(say.Code == 0, $"{say}\n{log}");
        Assert.Matches("^echo-v[12]$", say.Backend);
        Assert.Equal("hello", (string?)say.Replies[0]["text"]);
        Assert.Equal("/ambient.test.Echo/Say", (string?)say.Replies[0]["path"]);
        Assert.Equal("grpc-js", (string?)say.Replies[0]["headers"]!["x-caller"]);

        var count = results[1];
        Assert.True(count.Code == 0, count.ToString());
        Assert.Equal([0, 1, 2, 3, 4], count.Replies.Select(r => (int)r["index"]!));

        // A failing call: NOT_FOUND in the trailers with its message and the server's own trailing metadata.
        var failed = results[2];
        Assert.True(failed.Code == 5, failed.ToString());
        Assert.Equal("asked to fail with 5", failed.Details);
        Assert.Equal("test", failed.Trailers.GetValueOrDefault("x-failed-by"));

        // A stream that fails after two messages: both arrive, then FAILED_PRECONDITION.
        var half = results[3];
        Assert.Equal(9, half.Code);
        Assert.Equal(2, half.Replies.Count);

        string metrics = Metrics(mesh);
        foreach (string status in new[] { "0", "5", "9" })
        {
            Assert.Matches($"istio_requests_total\\{{[^}}]*destination_service=\"{Host.Replace(".", "\\.", StringComparison.Ordinal)}\"[^}}]*request_protocol=\"grpc\",response_code=\"200\",grpc_response_status=\"{status}\"", metrics);
        }
        Assert.Contains("\"POST /ambient.test.Echo/Say HTTP/2\" 200", log, StringComparison.Ordinal);
    }

    [GrpcJsFact]
    public async Task GrpcRoutesPickBackendsByServiceMethodAndHeaderAheadOfHttpRoutePrefixes()
    {
        var (servers, mesh) = await StartAsync("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: GRPCRoute
            metadata: {name: grpc, namespace: shop}
            spec:
              parentRefs: [{group: "", kind: Service, name: grpc, port: 50051}]
              rules:
              - matches: [{method: {service: ambient.test.Other}}]
                backendRefs: [{name: echo-v1, port: 50051}]
              - matches: [{method: {service: ambient.test.Echo, method: Count}}]
                backendRefs: [{name: echo-v2, port: 50051}]
              - matches: [{method: {service: ambient.test.Echo}, headers: [{name: x-version, value: v2}]}]
                backendRefs: [{name: echo-v2, port: 50051}]
            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: http, namespace: shop}
            spec:
              parentRefs: [{group: "", kind: Service, name: grpc, port: 50051}]
              rules:
              - matches: [{path: {type: PathPrefix, value: /ambient.test.Echo}}]
                backendRefs: [{name: echo-v1, port: 50051}]
            """);
        await using var _ = servers;
        await using var __ = mesh;

        var v2 = new Dictionary<string, string> { ["x-version"] = "v2" };
        var results = await CallAsync(mesh,
            new { method = "Other" },
            new { method = "Count", count = 1 },
            new { method = "Say", metadata = v2 },
            new { method = "Say" });
        Assert.All(results, r => Assert.True(r.Code == 0, $"{r}\n{mesh.WaypointLog}"));
        Assert.Equal("other", (string?)results[0].Replies[0]["text"]);
        Assert.Equal("echo-v1", results[0].Backend); // GRPCRoute service match
        Assert.Equal("echo-v2", results[1].Backend); // GRPCRoute exact method beats the HTTPRoute's prefix
        Assert.Equal("echo-v2", results[2].Backend); // header match on a service prefix as long as the HTTPRoute's
        Assert.Equal("echo-v1", results[3].Backend); // the HTTPRoute's /ambient.test.Echo prefix

        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "GRPCRoute/shop/grpc#1");
        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "HTTPRoute/shop/http#0");

        // Weighted backendRefs: a 50/50 split reaches both backends in twenty calls (all on one: p = 2e-6).
        await mesh.ApplyAsync("""
            apiVersion: gateway.networking.k8s.io/v1
            kind: GRPCRoute
            metadata: {name: grpc, namespace: shop}
            spec:
              parentRefs: [{group: "", kind: Service, name: grpc, port: 50051}]
              rules:
              - backendRefs: [{name: echo-v1, port: 50051, weight: 50}, {name: echo-v2, port: 50051, weight: 50}]
            """);
        var split = await CallAsync(mesh, [.. Enumerable.Range(0, 20).Select(_ => (object)new { method = "Say" })]);
        Assert.All(split, r => Assert.Equal(0, r.Code));
        Assert.Equal(2, split.Select(r => r.Backend).Distinct().Count());
    }

    [GrpcJsFact]
    public async Task ACallFailedWithUnavailableIsRetriedWithItsBodyAndAFaultAbortAnswersAGrpcStatus()
    {
        var (servers, mesh) = await StartAsync("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: grpc, namespace: shop}
            spec:
              hosts: [grpc]
              http:
              - match: [{uri: {prefix: /ambient.test.Other/}}]
                fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}
                route: [{destination: {host: grpc}}]
              - route: [{destination: {host: grpc}}]
                retries: {attempts: 2, retryOn: unavailable}
            """);
        await using var _ = servers;
        await using var __ = mesh;

        // gRPC sends no content-length: the message is kept while it streams, and replayed to the second attempt.
        await servers.FailFirstAsync(1);
        var results = await CallAsync(mesh, new { method = "Say", text = "again", padding = 3000 }, new { method = "Other" });
        var retried = results[0];
        Assert.True(retried.Code == 0, $"{retried}\n{mesh.WaypointLog}");
        Assert.Equal("again", (string?)retried.Replies[0]["text"]);
        Assert.Equal(3000, (int)retried.Replies[0]["request_bytes"]!);

        var aborted = results[1];
        Assert.Equal(8, aborted.Code);
        Assert.Equal("fault filter abort", aborted.Details);
        string metrics = Metrics(mesh);
        Assert.Matches("istio_requests_total\\{[^}]*request_protocol=\"grpc\",response_code=\"200\",grpc_response_status=\"8\",response_flags=\"FI\"", metrics);
        Assert.Contains("ambient_retries_total{destination_service=\"grpc.shop.svc.cluster.local\",result=\"retried\"} 1", metrics, StringComparison.Ordinal);
    }
}
