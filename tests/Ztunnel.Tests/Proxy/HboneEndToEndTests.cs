using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.Proxy;

/// <summary>Client -> node-a agent -> HBONE (mTLS) -> node-b agent -> echo, on loopback.</summary>
public sealed class HboneEndToEndTests
{
    [Fact]
    public async Task Bytes_survive_intact_both_ways_across_many_concurrent_tunnels()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        const int connections = 24;
        const int size = 512 * 1024;
        var tasks = Enumerable.Range(0, connections).Select(async i =>
        {
            var payload = RandomNumberGenerator.GetBytes(size + i);
            var (socket, reply) = await mesh.ConnectAsync(i % 2 == 0 ? mesh.ServiceEndPoint : mesh.Echo.EndPoint);
            using (socket)
            {
                Assert.Equal(0, reply);
                var send = Task.Run(async () =>
                {
                    await socket.SendAsync(payload, SocketFlags.None);
                    socket.Shutdown(SocketShutdown.Send);
                });
                var echoed = await Socks5Client.ReadToEndAsync(socket);
                await send.WaitAsync(Socks5Client.Timeout);
                Assert.Equal(payload.Length, echoed.Length);
                Assert.True(payload.AsSpan().SequenceEqual(echoed), $"connection {i}: echoed bytes differ");
            }
        });
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));

        // Many tunnels, one TLS connection: the 24 concurrent streams were multiplexed on node-a's pooled HBONE
        // connection to node-b (one source identity, one peer), and a tunnel opened afterwards reuses it too.
        Assert.Equal(connections, mesh.Echo.Accepted);
        Assert.Equal(1, mesh.NodeA.HboneConnectionCount);
        var (again, againReply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (again)
        {
            Assert.Equal(0, againReply);
            await again.SendAsync("again"u8.ToArray(), SocketFlags.None);
            await Socks5Client.ExpectEchoAsync(again, "again"u8.ToArray());
        }
        Assert.Equal(1, mesh.NodeA.HboneConnectionCount);
        Assert.Equal(connections + 1, mesh.Echo.Accepted);
        await TwoNodeMesh.EventuallyAsync(() => CountLines(mesh.AccessLogB, "direction=\"inbound\"") >= connections, "inbound access log lines");
        var log = mesh.AccessLogB.ToString();
        Assert.Contains("src.identity=\"spiffe://cluster.local/ns/default/sa/client\"", log, StringComparison.Ordinal);
        Assert.Contains("dst.identity=\"spiffe://cluster.local/ns/default/sa/echo\"", log, StringComparison.Ordinal);
        Assert.DoesNotContain("error=", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Half_close_from_the_client_reaches_the_server_and_the_reply_still_flows_back()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        mesh.Echo.ReplyOnEof = "done";
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (socket)
        {
            Assert.Equal(0, reply);
            var request = new byte[100_000];
            await socket.SendAsync(request, SocketFlags.None);
            socket.Shutdown(SocketShutdown.Send); // FIN -> END_STREAM -> FIN at the server
            var answer = System.Text.Encoding.ASCII.GetString(await Socks5Client.ReadToEndAsync(socket));
            Assert.Equal("100000:done", answer);
        }
    }

    [Fact]
    public async Task Service_vip_is_resolved_to_the_endpoint_with_the_target_port_translated()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (socket)
        {
            Assert.Equal(0, reply);
            await socket.SendAsync("ping"u8.ToArray(), SocketFlags.None);
            var buf = new byte[4];
            await Socks5Client.ReadExactlyAsync(socket, buf);
            Assert.Equal("ping"u8.ToArray(), buf);
        }
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogA.ToString().Contains("dst.service=", StringComparison.Ordinal), "outbound access log");
        var line = mesh.AccessLogA.ToString();
        Assert.Contains($"dst.service=\"{TwoNodeMesh.ServiceHostname}\"", line, StringComparison.Ordinal);
        Assert.Contains($"dst.addr={mesh.ServerIp}:{mesh.Echo.EndPoint.Port}", line, StringComparison.Ordinal);
        Assert.Contains($"dst.hbone_addr={mesh.ServerIp}:15008", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deny_policy_refuses_the_tunnel_with_401_and_the_client_connection_is_closed()
    {
        await using var mesh = await TwoNodeMesh.StartAsync((m, c) => c with
        {
            Policies =
            [
                new AuthorizationPolicy
                {
                    Name = "deny-client",
                    Namespace = "default",
                    Scope = PolicyScope.Namespace,
                    Action = PolicyAction.Deny,
                    Rules = [new PolicyRule([new PolicyClause([new PolicyMatch { Principals = [new StringMatch(StringMatchKind.Exact, "cluster.local/ns/default/sa/client")] }])])],
                },
            ],
        });
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        socket.Dispose();
        Assert.Equal(2, reply); // SOCKS5 "connection not allowed by ruleset"
        Assert.Equal(0, mesh.Echo.Accepted);
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogB.ToString().Contains("DENY", StringComparison.Ordinal), "inbound deny logged");
        Assert.Contains("default/deny-client", mesh.AccessLogB.ToString(), StringComparison.Ordinal);
        var (status, metrics) = await TwoNodeMesh.GetAsync(mesh.NodeB.EndPoints["metrics"], "/metrics");
        Assert.Equal(200, status);
        Assert.Contains("response_flags=\"DENY\"", metrics, StringComparison.Ordinal);
        Assert.Contains("reporter=\"destination\"", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_source_workload_is_refused()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        var stranger = new IPAddress([127, mesh.ClientIp.GetAddressBytes()[1], (byte)mesh.Subnet, 99]);
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint, stranger);
        socket.Dispose();
        Assert.NotEqual(0, reply);
        Assert.Equal(0, mesh.Echo.Accepted);
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogA.ToString().Contains("unknown source workload", StringComparison.Ordinal), "refusal logged");
    }

    [Fact]
    public async Task A_peer_from_another_certificate_authority_is_refused_and_nothing_reaches_the_app()
    {
        await using var mesh = await TwoNodeMesh.StartAsync(separateCaForNodeB: true);
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        socket.Dispose();
        Assert.NotEqual(0, reply);
        Assert.Equal(0, mesh.Echo.Accepted);
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogA.ToString().Contains("TLS_FAILURE", StringComparison.Ordinal), "TLS failure logged");
    }

    [Fact]
    public async Task Policy_change_closes_live_connections_that_are_now_denied()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (socket)
        {
            Assert.Equal(0, reply);
            await socket.SendAsync("x"u8.ToArray(), SocketFlags.None);
            await Socks5Client.ExpectEchoAsync(socket, "x"u8.ToArray());

            var deny = new AuthorizationPolicy
            {
                Name = "lockdown",
                Namespace = "default",
                Action = PolicyAction.Deny,
                Rules = [new PolicyRule([new PolicyClause([new PolicyMatch { Namespaces = [new StringMatch(StringMatchKind.Exact, "default")] }])])],
            };
            mesh.NodeB.ApplyConfig(InProcessAgent.WithListeners(mesh.Config with { Policies = [deny] }, mesh.ServerIp));

            // The live tunnel is torn down: the client sees EOF or a reset, never more echo.
            var ended = await ReadUntilClosedAsync(socket);
            Assert.True(ended);
        }
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogB.ToString().Contains("closed after policy change", StringComparison.Ordinal), "policy close logged");
    }

    [Fact]
    public async Task Destination_with_plain_tcp_protocol_is_reached_without_a_tunnel()
    {
        await using var mesh = await TwoNodeMesh.StartAsync((m, c) => c with
        {
            Workloads = c.Workloads.Select(w => w.Name == "echo" ? w with { Protocol = InboundProtocol.Tcp } : w).ToImmutableArray(),
        });
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (socket)
        {
            Assert.Equal(0, reply);
            await socket.SendAsync("plain"u8.ToArray(), SocketFlags.None);
            // The echo must come back unchanged through the plain TCP path, not merely five bytes of something.
            await Socks5Client.ExpectEchoAsync(socket, "plain"u8.ToArray());
        }
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogA.ToString().Contains("direction=\"outbound\"", StringComparison.Ordinal), "outbound log");
        Assert.DoesNotContain("hbone_addr", mesh.AccessLogA.ToString(), StringComparison.Ordinal);
        Assert.Equal(string.Empty, mesh.AccessLogB.ToString()); // node-b's agent never saw it
    }

    [Fact]
    public async Task Metrics_config_dump_and_readiness_are_served()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        var (socket, _) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (socket)
        {
            await socket.SendAsync("m"u8.ToArray(), SocketFlags.None);
            await Socks5Client.ExpectEchoAsync(socket, "m"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
            Assert.Empty(await Socks5Client.ReadToEndAsync(socket));
        }
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogA.ToString().Length > 0, "access log");

        var (status, metrics) = await TwoNodeMesh.GetAsync(mesh.NodeA.EndPoints["metrics"], "/metrics");
        Assert.Equal(200, status);
        foreach (var name in new[] { "istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total", "istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total", "istio_build" })
        {
            Assert.Contains(name, metrics, StringComparison.Ordinal);
        }
        Assert.Contains("source_principal=\"spiffe://cluster.local/ns/default/sa/client\"", metrics, StringComparison.Ordinal);
        Assert.Contains("connection_security_policy=\"mutual_tls\"", metrics, StringComparison.Ordinal);
        Assert.Matches("istio_tcp_received_bytes_total\\{[^}]*reporter=\"source\"[^}]*\\} 1\n", metrics);

        var (readyStatus, _) = await TwoNodeMesh.GetAsync(mesh.NodeA.EndPoints["readiness"], "/healthz/ready");
        Assert.Equal(200, readyStatus);

        var (dumpStatus, dump) = await TwoNodeMesh.GetAsync(mesh.NodeA.EndPoints["admin"], "/config_dump");
        Assert.Equal(200, dumpStatus);
        using var doc = System.Text.Json.JsonDocument.Parse(dump);
        Assert.Equal("node-a", doc.RootElement.GetProperty("node").GetString());
        Assert.Equal(2, doc.RootElement.GetProperty("workloads").GetArrayLength());
        Assert.Contains("spiffe://cluster.local/ns/default/sa/client", dump, StringComparison.Ordinal);
        Assert.Contains("BEGIN CERTIFICATE", dump, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", dump, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Quitquitquit_drains_and_readiness_fails_while_draining()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        var (status, _) = await TwoNodeMesh.GetAsync(mesh.NodeA.EndPoints["admin"], "/quitquitquit", "POST");
        Assert.Equal(200, status);
        var reason = await mesh.NodeA.ShutdownRequested.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("/quitquitquit", reason);
        await mesh.NodeA.StopAsync(reason).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.False(mesh.NodeA.Ready);
        var (readyStatus, _) = await TwoNodeMesh.GetAsync(mesh.NodeA.EndPoints["readiness"], "/healthz/ready");
        Assert.Equal(503, readyStatus);
    }

    private static async Task<bool> ReadUntilClosedAsync(Socket socket)
    {
        var buf = new byte[1024];
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buf.AsMemory(), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true;
        }
    }

    private static int CountLines(StringWriter w, string needle) =>
        w.ToString().Split('\n').Count(l => l.Contains(needle, StringComparison.Ordinal));
}
