using System.Net;
using System.Net.Sockets;
using Ambient.Mesh.Config;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Ztunnel.Tests.Proxy;

public sealed class AgentBehaviourTests
{
    [Fact]
    public async Task A_reset_by_the_server_reaches_the_client_as_a_reset()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        mesh.Echo.ResetOn = (byte)'R';
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (socket)
        {
            Assert.True(reply == 0, $"SOCKS reply {reply}; node-a log: {mesh.AccessLogA}");
            await socket.SendAsync("hello"u8.ToArray(), SocketFlags.None);
            await Socks5Client.ExpectEchoAsync(socket, "hello"u8.ToArray());
            await socket.SendAsync("R"u8.ToArray(), SocketFlags.None);
            // RST at the server -> RST_STREAM(CONNECT_ERROR) over HBONE -> RST to the client, not a clean FIN.
            var ex = await Assert.ThrowsAsync<SocketException>(() => Socks5Client.ReadToEndAsync(socket));
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
        }
    }

    [Fact]
    public async Task A_reset_by_the_client_reaches_the_server()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        Assert.Equal(0, reply);
        await socket.SendAsync("x"u8.ToArray(), SocketFlags.None);
        await Socks5Client.ExpectEchoAsync(socket, "x"u8.ToArray());
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
        await TwoNodeMesh.EventuallyAsync(
            () => mesh.AccessLogB.ToString().Contains("reset", StringComparison.OrdinalIgnoreCase),
            "node-b logs the tunnel as reset");
    }

    [Fact]
    public async Task Json_access_log_is_one_object_per_connection()
    {
        await using var mesh = await TwoNodeMesh.StartAsync((_, c) => c with { AccessLog = AccessLogFormat.Json });
        var (socket, _) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (socket)
        {
            await socket.SendAsync("j"u8.ToArray(), SocketFlags.None);
            await Socks5Client.ExpectEchoAsync(socket, "j"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
            Assert.Empty(await Socks5Client.ReadToEndAsync(socket));
        }
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogB.ToString().Length > 0, "inbound log line");
        var line = mesh.AccessLogB.ToString().Trim().Split('\n')[0];
        using var doc = System.Text.Json.JsonDocument.Parse(line);
        Assert.Equal("inbound", doc.RootElement.GetProperty("direction").GetString());
        Assert.Equal("spiffe://cluster.local/ns/default/sa/client", doc.RootElement.GetProperty("src.identity").GetString());
        Assert.Equal(1, doc.RootElement.GetProperty("bytes_recv").GetInt64());
    }

    [Fact]
    public async Task A_valid_config_edit_applies_live_and_an_invalid_one_keeps_the_last_good_config()
    {
        var dir = Directory.CreateTempSubdirectory("ztunnel-reload-").FullName;
        try
        {
            var path = Path.Combine(dir, "mesh.yaml");
            const string Listeners = """
                listeners:
                  outbound: 127.0.0.1:0
                  inbound: 127.0.0.1:0
                  hbone: 127.0.0.1:0
                  socks5: 127.0.0.1:0
                admin: 127.0.0.1:0
                metrics: 127.0.0.1:0
                readiness: 127.0.0.1:0

                """;
            await File.WriteAllTextAsync(path, Listeners + "workloads: []\n");
            var loaded = ConfigLoader.LoadFile(path);
            Assert.True(loaded.Ok, string.Join("\n", loaded.Errors));
            await using var agent = await Agent.StartAsync(
                new AgentOptions { ConfigPath = path, StateDir = Path.Combine(dir, "state"), AccessLogWriter = TextWriter.Null },
                loaded.Config!,
                NullLoggerFactory.Instance,
                new LogLevelSwitch(LogLevel.Information));

            await File.WriteAllTextAsync(path, Listeners + """
                workloads:
                - uid: cluster1//v1/Pod/default/a
                  name: a
                  namespace: default
                  workloadIps: [10.0.0.1]
                  protocol: HBONE
                """);
            await TwoNodeMesh.EventuallyAsync(() => agent.State.Current.WorkloadCount == 1, "valid edit applied");

            await File.WriteAllTextAsync(path, Listeners + "workloads:\n- name: [unclosed\n");
            await TwoNodeMesh.EventuallyAsync(() => agent.Metrics.Render().Contains("ambient_config_reloads_total{result=\"rejected\"} 1", StringComparison.Ordinal), "invalid edit rejected");
            var only = Assert.Single(agent.State.Current.Workloads);
            Assert.Equal(IPAddress.Parse("10.0.0.1"), only.WorkloadIps[0]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
