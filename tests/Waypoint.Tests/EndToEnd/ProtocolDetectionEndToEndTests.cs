using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Ambient.Waypoint.Tests.Support;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// Ports that declare no protocol (<c>web</c>, <c>echo</c> and an unnamed one are no protocol names) are sniffed by the
/// waypoint, client -> node-a ztunnel -> HBONE -> waypoint -> HBONE -> node-b ztunnel -> server: HTTP/1.1 and h2c are
/// parsed and routed (an HTTPRoute on the port applies), anything else is relayed as TCP, and a server-first protocol
/// whose client sends nothing works once the detection timeout has passed.
/// </summary>
public sealed class ProtocolDetectionEndToEndTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private static string Manifests(IPAddress vip, int echoPort, int mailPort) => $$"""
        apiVersion: v1
        kind: Service
        metadata:
          name: plain
          namespace: shop
          labels: {istio.io/use-waypoint: waypoint}
        spec:
          clusterIP: {{vip}}
          selector: {app: echo, version: v1}
          ports:
          - {name: web, port: 8080, targetPort: http}
          - {name: echo, port: 9000, targetPort: {{echoPort}}}
          - {port: 2525, targetPort: {{mailPort}}}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: plain-routes, namespace: shop}
        spec:
          parentRefs: [{group: "", kind: Service, name: plain, port: 8080}]
          rules:
          - filters:
            - type: ResponseHeaderModifier
              responseHeaderModifier: {set: [{name: x-route, value: sniffed}]}
            backendRefs: [{name: echo-v2, port: 80}]
        """;

    private sealed class Fixture : IAsyncDisposable
    {
        public required WaypointMesh Mesh { get; init; }
        public required TcpServer Echo { get; init; }
        public required TcpServer Mail { get; init; }
        public required IPAddress Vip { get; init; }

        public static async Task<Fixture> StartAsync(string extra = "")
        {
            int slot = WaypointMesh.NextSlot();
            var (v1, _) = WaypointMesh.EchoAddresses(slot);
            var echo = TcpServer.Echo(v1);
            var mail = TcpServer.Start(v1, ServeMailAsync);
            try
            {
                var vip = WaypointMesh.AddressIn(slot, 6);
                var mesh = await WaypointMesh.StartAsync(Manifests(vip, echo.Port, mail.Port) + extra, slot: slot);
                return new Fixture { Mesh = mesh, Echo = echo, Mail = mail, Vip = vip };
            }
            catch
            {
                await echo.DisposeAsync();
                await mail.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Mesh.DisposeAsync();
            await Echo.DisposeAsync();
            await Mail.DisposeAsync();
        }
    }

    [Fact]
    public async Task CurlOnAnUndeclaredPortIsParsedAndRouted()
    {
        await using var f = await Fixture.StartAsync();
        var socks = f.Mesh.AgentA.EndPoints["socks5"];

        var h1 = await Curl.RunAsync(f.Mesh.Client, socks, $"http://{f.Vip}:8080/one");
        Assert.True(h1.Status == 200, $"{h1.Status} {h1.Stderr} {f.Mesh.WaypointLog}");
        // The HTTPRoute on port 8080 applied: its response header, and its backend rather than the Service's own pods.
        Assert.Equal("sniffed", h1.Header("x-route"));
        Assert.Equal("echo-v2", h1.Header("x-backend"));
        Assert.Equal("HTTP/1.1", h1.Echo("protocol"));

        var h2 = await Curl.RunAsync(f.Mesh.Client, socks, $"http://{f.Vip}:8080/two", "--http2-prior-knowledge");
        Assert.True(h2.Status == 200, $"{h2.Status} {h2.Stderr} {f.Mesh.WaypointLog}");
        Assert.Equal("sniffed", h2.Header("x-route"));
        Assert.Equal("echo-v2", h2.Header("x-backend"));

        string metrics = await f.Mesh.GetAdminAsync(f.Mesh.WaypointEndpoints.Metrics, "/metrics");
        Assert.Contains(metrics.Split('\n'), l => l.StartsWith("istio_requests_total{", StringComparison.Ordinal)
            && l.Contains("request_protocol=\"http\"", StringComparison.Ordinal) && l.Contains("response_code=\"200\"", StringComparison.Ordinal));
        Assert.DoesNotContain("istio_tcp_connections_opened_total{", metrics, StringComparison.Ordinal);
    }

    [GrpcJsFact]
    public async Task NodeHttp2OnAnUndeclaredPortIsRouted()
    {
        await using var f = await Fixture.StartAsync();
        string output = await GrpcJs.RunAsync("h2-get.js", f.Mesh.Client.ToString(), f.Mesh.AgentA.EndPoints["socks5"].ToString(), $"{f.Vip}:8080", "/node");
        var result = JsonNode.Parse(output)!;
        Assert.True((int?)result["status"] == 200, $"{output} {f.Mesh.WaypointLog}");
        Assert.Equal("sniffed", (string?)result["headers"]!["x-route"]);
        Assert.Equal("echo-v2", (string?)result["headers"]!["x-backend"]);
        Assert.Contains("path: /node", (string?)result["body"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task NonHttpBytesAndAServerFirstProtocolPassAsTcp()
    {
        await using var f = await Fixture.StartAsync();
        var socks = f.Mesh.AgentA.EndPoints["socks5"];

        // A binary client-first protocol: decided at the first byte, and that byte is not lost.
        byte[] payload = [0, 0, 0, 42, .. Encoding.ASCII.GetBytes("binary hello "), .. new byte[50_000]];
        var (echoSocket, echoReply) = await Socks5Client.ConnectAsync(socks, f.Mesh.Client, new IPEndPoint(f.Vip, 9000));
        using (echoSocket)
        {
            Assert.Equal(0, echoReply);
            await echoSocket.SendAsync(payload, SocketFlags.None).WaitAsync(Timeout);
            echoSocket.Shutdown(SocketShutdown.Send);
            byte[] back = await Socks5Client.ReadToEndAsync(echoSocket);
            Assert.True(payload.AsSpan().SequenceEqual(back), $"echoed {back.Length} of {payload.Length} bytes; {f.Mesh.WaypointLog}");
        }

        // A server-first protocol (SMTP-like): the client waits for the banner before it says anything.
        var (mailSocket, mailReply) = await Socks5Client.ConnectAsync(socks, f.Mesh.Client, new IPEndPoint(f.Vip, 2525));
        using (mailSocket)
        {
            Assert.Equal(0, mailReply);
            Assert.Equal("220 mail ready", await ReadLineAsync(mailSocket));
            await mailSocket.SendAsync("HELO client\r\n"u8.ToArray(), SocketFlags.None).WaitAsync(Timeout);
            Assert.Equal("250 HELO client", await ReadLineAsync(mailSocket));
            await mailSocket.SendAsync("QUIT\r\n"u8.ToArray(), SocketFlags.None).WaitAsync(Timeout);
            Assert.Equal("221 bye", await ReadLineAsync(mailSocket));
        }

        await TestWait.UntilAsync(
            async () => (await f.Mesh.GetAdminAsync(f.Mesh.WaypointEndpoints.Metrics, "/metrics")).Contains("istio_tcp_connections_closed_total{", StringComparison.Ordinal)
                && f.Mesh.WaypointLog.ToString().Split('\n').Count(l => l.Contains("\"TCP\" - ", StringComparison.Ordinal)) == 2,
            "both TCP connections to be counted and logged");
        string metrics = await f.Mesh.GetAdminAsync(f.Mesh.WaypointEndpoints.Metrics, "/metrics");
        var opened = metrics.Split('\n').Where(l => l.StartsWith("istio_tcp_connections_opened_total{", StringComparison.Ordinal)).ToList();
        Assert.True(opened.Count == 1, string.Join('\n', opened));
        Assert.Contains("reporter=\"waypoint\"", opened[0], StringComparison.Ordinal);
        Assert.Contains("destination_service=\"plain.shop.svc.cluster.local\"", opened[0], StringComparison.Ordinal);
        Assert.Contains("request_protocol=\"tcp\"", opened[0], StringComparison.Ordinal);
        Assert.EndsWith(" 2", opened[0], StringComparison.Ordinal);
        long received = payload.Length + "HELO client\r\nQUIT\r\n".Length;
        Assert.Contains(metrics.Split('\n'), l => l.StartsWith("istio_tcp_received_bytes_total{", StringComparison.Ordinal) && l.EndsWith($" {received}", StringComparison.Ordinal));
        Assert.DoesNotContain("istio_requests_total{", metrics, StringComparison.Ordinal);
        Assert.Equal(1, f.Echo.Accepted);
        Assert.Equal(1, f.Mail.Accepted);
    }

    [Fact]
    public async Task OnePolicyDeniesSniffedHttpPerRequestAndSniffedTcpByReset()
    {
        // A DENY with an HTTP field: per request on the HTTP path; on the TCP path its L4 part (the principal) applies.
        await using var f = await Fixture.StartAsync("""

            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-client-get, namespace: shop}
            spec:
              targetRefs: [{kind: Service, group: "", name: plain}]
              action: DENY
              rules:
              - from: [{source: {principals: ["cluster.local/ns/shop/sa/client"]}}]
                to: [{operation: {methods: ["GET"]}}]
            """);
        var socks = f.Mesh.AgentA.EndPoints["socks5"];

        var get = await Curl.RunAsync(f.Mesh.Client, socks, $"http://{f.Vip}:8080/denied");
        Assert.True(get.Status == 403, $"{get.Status} {get.Stderr} {f.Mesh.WaypointLog}");
        Assert.Equal("RBAC: access denied", get.Body);
        var post = await Curl.RunAsync(f.Mesh.Client, socks, $"http://{f.Vip}:8080/allowed", "-X", "POST", "-d", "x");
        Assert.True(post.Status == 200, $"{post.Status} {post.Stderr} {f.Mesh.WaypointLog}");

        // The tunnel was answered before the bytes were sniffed, so the refusal is a reset: no byte comes back.
        var (socket, _) = await Socks5Client.ConnectAsync(socks, f.Mesh.Client, new IPEndPoint(f.Vip, 9000));
        using (socket)
        {
            try
            {
                await socket.SendAsync(new byte[] { 0, 1, 2, 3 }, SocketFlags.None).WaitAsync(Timeout);
                Assert.Empty(await Socks5Client.ReadToEndAsync(socket));
            }
            catch (SocketException)
            {
            }
        }
        Assert.Equal(0, f.Echo.Accepted);
        await TestWait.UntilAsync(
            async () => (await f.Mesh.GetAdminAsync(f.Mesh.WaypointEndpoints.Metrics, "/metrics")).Split('\n').Any(l =>
                l.StartsWith("istio_tcp_connections_opened_total{", StringComparison.Ordinal) && l.Contains("response_flags=\"DENY\"", StringComparison.Ordinal)),
            "the denied TCP connection to be counted");
    }

    /// <summary>A server that speaks first, as SMTP does: a banner, then one reply per line until QUIT.</summary>
    private static async Task ServeMailAsync(Socket s)
    {
        await s.SendAsync("220 mail ready\r\n"u8.ToArray(), SocketFlags.None);
        while (await ReadLineAsync(s) is { } line)
        {
            if (line == "QUIT")
            {
                await s.SendAsync("221 bye\r\n"u8.ToArray(), SocketFlags.None);
                s.Shutdown(SocketShutdown.Send);
                return;
            }
            await s.SendAsync(Encoding.ASCII.GetBytes($"250 {line}\r\n"), SocketFlags.None);
        }
    }

    /// <summary>One CRLF-terminated line, read a byte at a time (nothing past it is taken); null at EOF.</summary>
    private static async Task<string?> ReadLineAsync(Socket s)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            int n = await s.ReceiveAsync(one.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Timeout);
            if (n == 0)
            {
                return line.Length == 0 ? null : line.ToString();
            }
            if (one[0] == (byte)'\n')
            {
                return line.ToString().TrimEnd('\r');
            }
            line.Append((char)one[0]);
        }
    }
}
