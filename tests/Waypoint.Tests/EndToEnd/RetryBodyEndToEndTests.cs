using Ambient.Waypoint.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// Retries of request bodies without a declared length (issue 11): a chunked body is kept while it streams and sent
/// again when the first attempt fails; one larger than the 64 KiB limit is not retried, and the first answer stands.
/// </summary>
public sealed class RetryBodyEndToEndTests
{
    private const string RetryRoute = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: retried, namespace: shop}
        spec:
          parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
          rules:
          - backendRefs: [{name: echo-v1, port: 80}]
            retry: {attempts: 2, codes: [503]}
        """;

    [Fact]
    public async Task AChunkedBodyIsResentAfterAFailedAttemptUnlessItOutgrewTheLimit()
    {
        await using var mesh = await WaypointMesh.StartAsync(RetryRoute);
        int attempts = 0;
        var received = new System.Collections.Concurrent.ConcurrentQueue<long>();
        // Every request's first attempt reads the whole body, then fails with 503; the next one is answered.
        mesh.V1.Script = async context =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            received.Enqueue(body.Length);
            if (Interlocked.Increment(ref attempts) % 2 == 1)
            {
                context.Response.StatusCode = 503;
                await context.Response.WriteAsync("first attempt fails");
                return true;
            }
            await context.Response.WriteAsync($"body-bytes: {body.Length}\n");
            return true;
        };

        var r = await mesh.CurlAsync("/chunked", "-H", "Transfer-Encoding: chunked", "--data-binary", new string('a', 40_000));
        Assert.True(r.Status == 200, $"{r.Status} {r.Body}\n{mesh.WaypointLog}");
        Assert.Equal("40000", r.Echo("body-bytes"));
        Assert.Equal([40_000L, 40_000L], received);
        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"POST /chunked HTTP/1.1\" 200 -");

        // 100 KB is over the 64 KiB kept for a retry: the first attempt's 503 goes back to the client.
        Interlocked.Exchange(ref attempts, 0);
        received.Clear();
        var big = await mesh.CurlAsync("/too-big", "-H", "Transfer-Encoding: chunked", "--data-binary", new string('b', 100_000));
        Assert.True(big.Status == 503, $"{big.Status} {big.Body}\n{mesh.WaypointLog}");
        Assert.Equal("first attempt fails", big.Body);
        Assert.Equal([100_000L], received);
    }
}
