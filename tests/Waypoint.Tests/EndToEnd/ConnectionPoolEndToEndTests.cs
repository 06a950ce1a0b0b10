using System.Net;
using System.Net.Sockets;
using Ambient.Waypoint.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// DestinationRule <c>connectionPool</c> settings that shape the waypoint's upstream connections, seen from the
/// backend (which connection each request arrived on) and from the access log: <c>http.maxRequestsPerConnection</c>,
/// <c>http.idleTimeout</c>, <c>tcp.connectTimeout</c>.
/// </summary>
public sealed class ConnectionPoolEndToEndTests
{
    private static string Rule(string connectionPool) => $$"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: echo, namespace: shop}
        spec:
          host: echo.shop.svc.cluster.local
          trafficPolicy:
            connectionPool: {{connectionPool}}
        """;

    /// <summary>Sends <paramref name="n"/> requests one after another; returns how many distinct upstream connections served them.</summary>
    private static async Task<int> ConnectionsUsedAsync(WaypointMesh mesh, int n, TimeSpan pause)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        Func<HttpContext, Task<bool>> record = ctx =>
        {
            lock (ids)
            {
                ids.Add(ctx.Connection.Id);
            }
            return Task.FromResult(false);
        };
        mesh.V1.Script = record;
        mesh.V2.Script = record;
        for (int i = 0; i < n; i++)
        {
            var r = await mesh.CurlAsync($"/pool/{i}");
            Assert.Equal(200, r.Status);
            if (pause > TimeSpan.Zero)
            {
                await Task.Delay(pause);
            }
        }
        lock (ids)
        {
            return ids.Count;
        }
    }

    [Fact]
    public async Task MaxRequestsPerConnectionOneOpensAConnectionPerRequest()
    {
        await using var mesh = await WaypointMesh.StartAsync();
        // Without the setting the waypoint keeps its connections: two pods, at most two connections for six requests.
        Assert.InRange(await ConnectionsUsedAsync(mesh, 6, TimeSpan.Zero), 1, 2);
        await mesh.ApplyAsync(Rule("{http: {maxRequestsPerConnection: 1}}"));
        Assert.Equal(6, await ConnectionsUsedAsync(mesh, 6, TimeSpan.Zero));
    }

    [Fact]
    public async Task MaxRequestsPerConnectionThreeReusesEachConnectionThreeTimes()
    {
        await using var mesh = await WaypointMesh.StartAsync(Rule("{http: {maxRequestsPerConnection: 3}}"));
        // Requests per connection, as each pod saw them.
        var perConnection = new Dictionary<string, int>(StringComparer.Ordinal);
        var perPod = new Dictionary<string, int>(StringComparer.Ordinal);
        Func<string, Func<HttpContext, Task<bool>>> record = pod => ctx =>
        {
            lock (perConnection)
            {
                perConnection[pod + "/" + ctx.Connection.Id] = perConnection.GetValueOrDefault(pod + "/" + ctx.Connection.Id) + 1;
                perPod[pod] = perPod.GetValueOrDefault(pod) + 1;
            }
            return Task.FromResult(false);
        };
        mesh.V1.Script = record("v1");
        mesh.V2.Script = record("v2");
        for (int i = 0; i < 12; i++)
        {
            Assert.Equal(200, (await mesh.CurlAsync($"/pool/{i}")).Status);
        }
        lock (perConnection)
        {
            // One after another, each pod's requests fill a connection to three before the next one opens.
            foreach (var (pod, n) in perPod)
            {
                var counts = perConnection.Where(kv => kv.Key.StartsWith(pod + "/", StringComparison.Ordinal)).Select(kv => kv.Value).Order().ToList();
                var expected = Enumerable.Repeat(3, n / 3).ToList();
                if (n % 3 != 0)
                {
                    expected.Insert(0, n % 3);
                }
                Assert.Equal(expected, counts);
            }
        }
    }

    [Fact]
    public async Task IdleTimeoutClosesConnectionsThatWaitedLonger()
    {
        await using var mesh = await WaypointMesh.StartAsync(Rule("{http: {idleTimeout: 100ms}}"));
        // Each request waits well past the idle timeout after the previous one, so none finds a connection to reuse.
        // (The pool closes idle connections from a periodic sweep of about a second, not on reuse: the pause covers it.)
        Assert.Equal(3, await ConnectionsUsedAsync(mesh, 3, TimeSpan.FromMilliseconds(2500)));
        // The same pauses under a long idle timeout reuse the connections.
        await mesh.ApplyAsync(Rule("{http: {idleTimeout: 1h}}"));
        Assert.InRange(await ConnectionsUsedAsync(mesh, 4, TimeSpan.FromMilliseconds(600)), 1, 2);
    }

    [Fact]
    public async Task ConnectTimeoutFailsAnUnresponsiveEndpointWithUF()
    {
        await using var mesh = await WaypointMesh.StartAsync();
        var bytes = mesh.WaypointIp.GetAddressBytes();
        var slowIp = new IPAddress([bytes[0], bytes[1], bytes[2], 40]);
        var slowVip = new IPAddress([bytes[0], bytes[1], bytes[2], 5]);
        // The pod's HBONE port accepts TCP and never answers the TLS handshake.
        using var silent = new TcpListener(slowIp, 15008);
        silent.Start();
        var held = new List<TcpClient>();
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var c = await silent.AcceptTcpClientAsync(stop.Token);
                    lock (held)
                    {
                        held.Add(c);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        try
        {
            await mesh.ApplyAsync($$$"""
                apiVersion: v1
                kind: Pod
                metadata: {name: slow, namespace: shop, labels: {app: slow}}
                spec: {nodeName: node-s, serviceAccountName: slow, containers: [{name: c, image: i}]}
                status: {podIP: {{{slowIp}}}, podIPs: [{ip: {{{slowIp}}}}]}
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: slow, namespace: shop, labels: {istio.io/use-waypoint: waypoint}}
                spec: {clusterIP: {{{slowVip}}}, selector: {app: slow}, ports: [{name: http, port: 80, targetPort: 8080}]}
                ---
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: slow, namespace: shop}
                spec:
                  host: slow.shop.svc.cluster.local
                  trafficPolicy:
                    connectionPool:
                      tcp: {connectTimeout: 200ms}
                """);
            // ztunnel on node-a learns the service from the same manifests; wait until it routes the VIP.
            Curl.Result? r = null;
            for (int i = 0; i < 50 && r?.Status is not (>= 500); i++)
            {
                r = await mesh.CurlToAsync(slowVip, "/slow");
                if (r.Status is not (>= 500))
                {
                    await Task.Delay(100);
                }
            }
            Assert.True(r!.Status is 502 or 503, $"status {r.Status}\n{r.Stderr}\n{mesh.WaypointLog}");
            string log = mesh.WaypointLog.ToString();
            var line = log.Split('\n').LastOrDefault(l => l.Contains("/slow", StringComparison.Ordinal)) ?? "";
            // The reason is the waypoint's own "upstream connect timeout: ..." (ConnectionPools), around the handler's
            // "... within the configured ConnectTimeout"; the whole log goes with a failure (CI once saw UF for another reason).
            Assert.True(line.Contains(" UF", StringComparison.Ordinal)
                && (line.Contains("upstream connect timeout", StringComparison.Ordinal) || line.Contains("ConnectTimeout", StringComparison.Ordinal)),
                $"the last /slow line: {line}\nthe whole log:\n{log}");
            lock (held)
            {
                Assert.NotEmpty(held); // it did reach the pod's port, and gave up on the silent handshake
            }
        }
        finally
        {
            await stop.CancelAsync();
            silent.Stop();
            await accepting.WaitAsync(TimeSpan.FromSeconds(5));
            lock (held)
            {
                held.ForEach(c => c.Dispose());
            }
        }
    }
}
