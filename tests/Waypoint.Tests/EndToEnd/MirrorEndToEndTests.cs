using System.Collections.Concurrent;
using Ambient.Waypoint.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// Request mirroring through ztunnel -> waypoint -> ztunnel: the mirror gets a copy (body included, host with
/// "-shadow"), the client gets the primary's answer, and a slow, failing or absent mirror changes nothing for it.
/// </summary>
public sealed class MirrorEndToEndTests
{
    private sealed record Seen(string Method, string Path, string Host, long BodyBytes);

    /// <summary>Makes echo v2 record what it receives and, while <paramref name="hold"/> is pending, not answer.</summary>
    private static ConcurrentQueue<Seen> Record(EchoApp app, Func<Task>? hold = null)
    {
        var seen = new ConcurrentQueue<Seen>();
        app.Script = async context =>
        {
            var req = context.Request;
            using var body = new MemoryStream();
            await req.Body.CopyToAsync(body);
            seen.Enqueue(new Seen(req.Method, $"{req.Path}{req.QueryString}", req.Host.Value ?? "", body.Length));
            if (hold is not null)
            {
                await hold();
            }
            context.Response.StatusCode = 299;
            return true;
        };
        return seen;
    }

    private const string HttpRouteMirror = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: mirrored, namespace: shop}
        spec:
          parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
          rules:
          - filters:
            - type: RequestMirror
              requestMirror: {backendRef: {name: echo-v2, port: 80}}
            backendRefs: [{name: echo-v1, port: 80}]
        """;

    [Fact]
    public async Task HttpRouteRequestMirrorCopiesRequestsWithTheirBodiesAndNeverHoldsTheClient()
    {
        await using var mesh = await WaypointMesh.StartAsync(HttpRouteMirror);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool holding = false;
        var seen = Record(mesh.V2, () => Volatile.Read(ref holding) ? release.Task.WaitAsync(TimeSpan.FromSeconds(30)) : Task.CompletedTask);

        var r = await mesh.CurlAsync("/orders?id=7", "-d", "item=book&qty=2");
        Assert.True(r.Status == 200, $"{r.Status} {r.Stderr}\n{mesh.WaypointLog}");
        Assert.Equal("echo-v1", r.Echo("backend"));
        await TestWait.UntilAsync(() => !seen.IsEmpty, "the mirror receives the copy");
        var copy = Assert.Single(seen);
        Assert.Equal(new Seen("POST", "/orders?id=7", $"{mesh.Vip}-shadow", 15), copy);

        // A chunked body of 20 KB is copied whole as well.
        var big = await mesh.CurlAsync("/upload", "-H", "Transfer-Encoding: chunked", "--data-binary", new string('x', 20_000));
        Assert.Equal(200, big.Status);
        Assert.Equal("20000", big.Echo("body-bytes"));
        await TestWait.UntilAsync(() => seen.Count == 2, "the mirror receives the chunked copy");
        Assert.Equal(20_000, seen.Last().BodyBytes);

        // A mirror that does not answer: the client's request completes from the primary while the copy is held.
        Volatile.Write(ref holding, true);
        var slow = await mesh.CurlAsync("/while-mirror-hangs");
        Assert.Equal(200, slow.Status);
        Assert.Equal("echo-v1", slow.Echo("backend"));
        await TestWait.UntilAsync(() => seen.Any(s => s.Path == "/while-mirror-hangs"), "the held copy reached the mirror");
        release.SetResult();
    }

    [Fact]
    public async Task VirtualServiceMirrorToABackendThatRefusesConnectionsLeavesRequestsUntouched()
    {
        int slot = WaypointMesh.NextSlot();
        await using var mesh = await WaypointMesh.StartAsync(slot: slot, extra: $$$"""
            apiVersion: v1
            kind: Service
            metadata: {name: dead, namespace: shop}
            spec:
              clusterIP: {{{WaypointMesh.AddressIn(slot, 6)}}}
              selector: {app: echo, version: v2}
              ports: [{name: http, port: 80, targetPort: 9}]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: echo, namespace: shop}
            spec:
              hosts: [echo]
              http:
              - match: [{uri: {prefix: /dead}}]
                mirror: {host: dead}
                route: [{destination: {host: echo-v1}}]
              - match: [{uri: {prefix: /none}}]
                mirror: {host: echo-v2}
                mirrorPercentage: {value: 0}
                route: [{destination: {host: echo-v1}}]
              - mirrors: [{destination: {host: echo-v2}}]
                route: [{destination: {host: echo-v1}}]
            """);
        var seen = Record(mesh.V2);

        for (int i = 0; i < 3; i++)
        {
            var dead = await mesh.CurlAsync($"/dead/{i}", "-d", "payload");
            Assert.True(dead.Status == 200, $"{dead.Status} {dead.Stderr}\n{mesh.WaypointLog}");
            Assert.Equal("echo-v1", dead.Echo("backend"));
        }
        var none = await mesh.CurlAsync("/none");
        Assert.Equal("echo-v1", none.Echo("backend"));
        var all = await mesh.CurlAsync("/all");
        Assert.Equal("echo-v1", all.Echo("backend"));
        await TestWait.UntilAsync(() => seen.Any(s => s.Path == "/all"), "the mirrors entry copies /all to echo-v2");
        // mirrorPercentage 0 sends nothing; the dead mirror's copies went nowhere (echo-v2 only saw /all).
        Assert.Equal(["/all"], seen.Select(s => s.Path));
        Assert.Equal($"{mesh.Vip}-shadow", seen.Single().Host);
    }
}
