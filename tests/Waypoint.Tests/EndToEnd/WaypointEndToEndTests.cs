using Ambient.Waypoint.Tests.Support;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>client -> ztunnel -> waypoint -> ztunnel -> server, on loopback, with curl.</summary>
public sealed class WaypointEndToEndTests
{
    [Fact]
    public async Task Http11AndH2cRequestsReachTheServiceThroughTheWaypoint()
    {
        await using var mesh = await WaypointMesh.StartAsync();

        var r1 = await mesh.CurlAsync("/hello?x=1");
        Assert.True(r1.Status == 200, $"HTTP/1.1: {r1.Status} {r1.Stderr}\n{r1.Body}\n{mesh.WaypointLog}");
        Assert.StartsWith("echo-v", r1.Echo("backend"));
        Assert.Equal("/hello?x=1", r1.Echo("path"));
        Assert.Equal(mesh.Vip.ToString(), r1.Echo("host"));

        var r2 = await mesh.CurlAsync("/h2", "--http2-prior-knowledge");
        Assert.True(r2.Status == 200, $"h2c: {r2.Status} {r2.Stderr}\n{r2.Body}");
        Assert.Equal("/h2", r2.Echo("path"));

        // The destination ztunnels saw the waypoint's identity, not the client's (the waypoint keeps its upstream
        // tunnels pooled, so they are counted as opened rather than logged as closed).
        string inbound = mesh.AgentB.Metrics.Render() + mesh.AgentC.Metrics.Render();
        Assert.Contains("source_principal=\"spiffe://cluster.local/ns/shop/sa/waypoint\"", inbound, StringComparison.Ordinal);
        Assert.DoesNotContain("source_principal=\"spiffe://cluster.local/ns/shop/sa/client\"", inbound, StringComparison.Ordinal);
        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"GET /hello?x=1 HTTP/1.1\" 200");
        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"GET /h2 HTTP/2\" 200");
    }

    [Fact]
    public async Task WebSocketUpgradeIsProxied()
    {
        await using var mesh = await WaypointMesh.StartAsync();
        // A .NET WebSocket client in the client pod: its SOCKS5 connection to node-a comes from the pod's address.
        var socks = mesh.AgentA.EndPoints["socks5"];
        using var handler = new SocketsHttpHandler
        {
            Proxy = new System.Net.WebProxy($"socks5://{socks}"),
            ConnectCallback = async (context, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                socket.Bind(new System.Net.IPEndPoint(mesh.Client, 0));
                await socket.ConnectAsync(socks, ct);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        };
        using var invoker = new HttpMessageInvoker(handler);
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await ws.ConnectAsync(new Uri($"ws://{mesh.Vip}/chat"), invoker, timeout.Token);
        await ws.SendAsync("hello"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, true, timeout.Token);
        var buffer = new byte[256];
        var got = await ws.ReceiveAsync(buffer, timeout.Token);
        Assert.Matches("^echo-v[12]: hello$", System.Text.Encoding.UTF8.GetString(buffer, 0, got.Count));
        await ws.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
        await TestWait.UntilAsync(() => mesh.WaypointLog.ToString().Contains("\"GET /chat HTTP/1.1\" 101", StringComparison.Ordinal), "the upgrade is logged with status 101");
    }

    [Fact]
    public async Task StoppingDrainsRequestsInFlightAndRefusesNewOnes()
    {
        await using var mesh = await WaypointMesh.StartAsync();
        var slow = mesh.CurlAsync("/delay/1500");
        await TestWait.UntilAsync(() => mesh.V1.InFlight + mesh.V2.InFlight == 1, "the slow request reaches a backend");
        // What SIGTERM does (the process test checks the signal itself): the host stops, Kestrel drains.
        var stopping = mesh.Waypoint.StopAsync();
        var r = await slow;
        Assert.True(r.Status == 200, $"the request in flight was cut: {r.Status} {r.Stderr}");
        Assert.Equal("/delay/1500", r.Echo("path"));
        await stopping.WaitAsync(TimeSpan.FromSeconds(15));
        var after = await mesh.CurlAsync("/after-stop");
        Assert.NotEqual(200, after.Status);
    }
}
