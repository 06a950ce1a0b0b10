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
        Assert.Contains("\"GET /hello?x=1 HTTP/1.1\" 200", mesh.WaypointLog.ToString(), StringComparison.Ordinal);
        Assert.Contains("\"GET /h2 HTTP/2\" 200", mesh.WaypointLog.ToString(), StringComparison.Ordinal);
    }
}
