using System.Net;
using System.Net.Sockets;
using System.Text;
using Ambient.Waypoint.Tests.Support;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// A service port declared non-HTTP (<c>name: tcp-echo</c>, or <c>appProtocol: mysql</c>) is relayed by the waypoint
/// as bytes: client -> node-a ztunnel (SOCKS5) -> HBONE -> waypoint -> HBONE -> node-b ztunnel -> a raw TCP echo
/// server on echo v1's address. L4 policy targeting the Service decides; Istio's TCP metrics count it.
/// </summary>
public sealed class TcpEndToEndTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private static string TcpService(IPAddress vip, int port, string portSpec) => $$"""
        apiVersion: v1
        kind: Service
        metadata:
          name: tcp-echo
          namespace: shop
          labels: {istio.io/use-waypoint: waypoint}
        spec:
          clusterIP: {{vip}}
          selector: {app: echo, version: v1}
          ports: [{port: 9000, targetPort: {{port}}, {{portSpec}}}]
        """;

    private const string DenyFromClient = """
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-client, namespace: shop}
        spec:
          targetRefs: [{kind: Service, group: "", name: tcp-echo}]
          action: DENY
          rules:
          - from: [{source: {principals: ["cluster.local/ns/shop/sa/client"]}}]
        """;

    [Fact]
    public async Task BytesEchoBothWaysWithHalfCloseAndAreCounted()
    {
        int slot = WaypointMesh.NextSlot();
        var (v1, _) = WaypointMesh.EchoAddresses(slot);
        await using var echo = TcpServer.Echo(v1);
        var vip = WaypointMesh.AddressIn(slot, 6);
        await using var mesh = await WaypointMesh.StartAsync(TcpService(vip, echo.Port, "name: tcp-echo"), slot: slot);

        var (socket, reply) = await Socks5Client.ConnectAsync(mesh.AgentA.EndPoints["socks5"], mesh.Client, new IPEndPoint(vip, 9000));
        using (socket)
        {
            Assert.Equal(0, reply);
            byte[] payload = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: not-parsed\r\n\r\n" + new string('x', 100_000));
            await socket.SendAsync(payload, SocketFlags.None).WaitAsync(Timeout);
            // Half-close: the echo server sees EOF, echoes what it had, then closes its side.
            socket.Shutdown(SocketShutdown.Send);
            byte[] back = await ReadToEndAsync(socket);
            Assert.True(payload.AsSpan().SequenceEqual(back), $"echoed {back.Length} of {payload.Length} bytes; {mesh.WaypointLog}");
        }

        string labels = "reporter=\"waypoint\"";
        await TestWait.UntilAsync(
            async () => (await mesh.GetAdminAsync(mesh.WaypointEndpoints.Metrics, "/metrics")).Contains("istio_tcp_connections_closed_total{", StringComparison.Ordinal),
            "the closed TCP connection to be counted");
        string metrics = await mesh.GetAdminAsync(mesh.WaypointEndpoints.Metrics, "/metrics");
        string opened = Line(metrics, "istio_tcp_connections_opened_total{");
        Assert.Contains(labels, opened, StringComparison.Ordinal);
        Assert.Contains("source_workload=\"client\"", opened, StringComparison.Ordinal);
        Assert.Contains("destination_workload=\"echo-v1\"", opened, StringComparison.Ordinal);
        Assert.Contains("destination_service=\"tcp-echo.shop.svc.cluster.local\"", opened, StringComparison.Ordinal);
        Assert.Contains("request_protocol=\"tcp\"", opened, StringComparison.Ordinal);
        Assert.Contains("connection_security_policy=\"mutual_tls\"", opened, StringComparison.Ordinal);
        Assert.EndsWith(" 1", opened, StringComparison.Ordinal);
        Assert.EndsWith(" 1", Line(metrics, "istio_tcp_connections_closed_total{"), StringComparison.Ordinal);
        long expected = Encoding.ASCII.GetByteCount("GET / HTTP/1.1\r\nHost: not-parsed\r\n\r\n") + 100_000;
        Assert.EndsWith($" {expected}", Line(metrics, "istio_tcp_received_bytes_total{"), StringComparison.Ordinal);
        Assert.EndsWith($" {expected}", Line(metrics, "istio_tcp_sent_bytes_total{"), StringComparison.Ordinal);
        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"TCP\" - ");
        // Not parsed as HTTP: no request was counted.
        Assert.DoesNotContain("istio_requests_total{", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnL4DenyRefusesTheTcpPortWhileHttpKeepsWorking()
    {
        int slot = WaypointMesh.NextSlot();
        var (v1, _) = WaypointMesh.EchoAddresses(slot);
        await using var echo = TcpServer.Echo(v1);
        var vip = WaypointMesh.AddressIn(slot, 6);
        await using var mesh = await WaypointMesh.StartAsync(TcpService(vip, echo.Port, "name: db, appProtocol: mysql") + "\n" + DenyFromClient, slot: slot);

        var (socket, _) = await Socks5Client.ConnectAsync(mesh.AgentA.EndPoints["socks5"], mesh.Client, new IPEndPoint(vip, 9000));
        using (socket)
        {
            // The SOCKS reply may come before the waypoint answers; either way no byte comes back and the socket ends.
            try
            {
                await socket.SendAsync("hello"u8.ToArray(), SocketFlags.None).WaitAsync(Timeout);
                byte[] back = await ReadToEndAsync(socket);
                Assert.Empty(back);
            }
            catch (SocketException)
            {
            }
        }
        Assert.Equal(0, echo.Accepted);

        var http = await mesh.CurlAsync("/still-http");
        Assert.True(http.Status == 200, $"{http.Status} {http.Stderr} {mesh.WaypointLog}");

        await TestWait.UntilAsync(
            async () => (await mesh.GetAdminAsync(mesh.WaypointEndpoints.Metrics, "/metrics")).Contains("response_flags=\"DENY\"", StringComparison.Ordinal),
            "the denied TCP connection to be counted");
        string metrics = await mesh.GetAdminAsync(mesh.WaypointEndpoints.Metrics, "/metrics");
        string denied = Line(metrics, "istio_tcp_connections_opened_total{");
        Assert.Contains("response_flags=\"DENY\"", denied, StringComparison.Ordinal);
        Assert.Contains("request_protocol=\"tcp\"", denied, StringComparison.Ordinal);
        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "deny-client");
    }

    private static string Line(string metrics, string prefix) =>
        metrics.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal)) ?? throw new Xunit.Sdk.XunitException($"no {prefix} in:\n{metrics}");

    private static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        using var ms = new MemoryStream();
        var buffer = new byte[16384];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Timeout);
            if (n == 0)
            {
                return ms.ToArray();
            }
            ms.Write(buffer, 0, n);
        }
    }
}
