using System.Net;
using System.Net.Sockets;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.Cli;

/// <summary>The ztunnel command as a user runs it: help, validation, start-up errors, SIGTERM.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ztunnel-cli-").FullName;

    [Fact]
    public async Task Help_describes_every_option_and_exits_zero()
    {
        var (code, stdout, _) = await ZtunnelProcess.RunAsync("--help");
        Assert.Equal(0, code);
        foreach (var option in new[] { "--config", "--validate", "--node", "--state-dir", "--access-log", "--log-level",
            "--xds-address", "--ca-address", "--xds-root-cert", "--token-file", "--cluster-id", "XDS_ADDRESS", "CA_ADDRESS" })
        {
            Assert.Contains(option, stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_malformed_control_plane_address_is_an_error_that_names_the_flag()
    {
        var (code, _, stderr) = await ZtunnelProcess.RunAsync("--xds-address", "ftp://istiod:15012");
        Assert.Equal(2, code);
        Assert.Contains("--xds-address: 'ftp://istiod:15012' is not a control plane address", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_argument_is_an_error_that_points_to_help()
    {
        var (code, _, stderr) = await ZtunnelProcess.RunAsync("--frobnicate");
        Assert.Equal(2, code);
        Assert.Contains("unknown argument '--frobnicate'", stderr, StringComparison.Ordinal);
        Assert.Contains("--help", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_accepts_a_good_file()
    {
        var path = Write("good.yaml", """
            workloads:
            - uid: cluster1//v1/Pod/default/a
              name: a
              namespace: default
              workloadIps: [10.0.0.1]
              protocol: HBONE
            """);
        var (code, stdout, _) = await ZtunnelProcess.RunAsync("--config", path, "--validate");
        Assert.Equal(0, code);
        Assert.Contains("valid (1 workloads", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_reports_every_error_with_file_line_and_field()
    {
        var path = Write("bad.yaml", """
            workloads:
            - uid: cluster1//v1/Pod/default/a
              name: a
              namespace: default
              workloadIps: [10.0.0.300]
              protocol: QUIC
            accessLog: xml
            """);
        var (code, _, stderr) = await ZtunnelProcess.RunAsync("--config", path, "--validate");
        Assert.Equal(1, code);
        Assert.Contains($"{path}:5:", stderr, StringComparison.Ordinal);
        Assert.Contains("workloads[0].workloadIps[0]", stderr, StringComparison.Ordinal);
        Assert.Contains($"{path}:6:", stderr, StringComparison.Ordinal);
        Assert.Contains("workloads[0].protocol", stderr, StringComparison.Ordinal);
        Assert.Contains($"{path}:7:", stderr, StringComparison.Ordinal);
        Assert.Contains("accessLog", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_port_in_use_fails_start_up_with_a_message_naming_it()
    {
        using var blocker = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        blocker.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        blocker.Listen();
        int port = ((IPEndPoint)blocker.LocalEndPoint!).Port;
        var path = Write("busy.yaml", $"""
            listeners:
              outbound: 127.0.0.1:0
              inbound: 127.0.0.1:0
              hbone: 127.0.0.1:0
              socks5: 127.0.0.1:{port}
            admin: 127.0.0.1:0
            metrics: 127.0.0.1:0
            readiness: 127.0.0.1:0
            """);
        var (code, _, stderr) = await ZtunnelProcess.RunAsync("--config", path, "--state-dir", Path.Combine(_dir, "state"));
        Assert.Equal(1, code);
        Assert.Contains($"127.0.0.1:{port}", stderr, StringComparison.Ordinal);
        Assert.Contains("socks5", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sigterm_drains_and_exits_zero()
    {
        var path = Write("run.yaml", """
            listeners:
              outbound: 127.0.0.1:0
              inbound: 127.0.0.1:0
              hbone: 127.0.0.1:0
              socks5: 127.0.0.1:0
            admin: 127.0.0.1:0
            metrics: 127.0.0.1:0
            readiness: 127.0.0.1:0
            drainTimeout: 1s
            """);
        using var p = new ZtunnelProcess("--config", path, "--state-dir", Path.Combine(_dir, "state"));
        await TwoNodeMesh.EventuallyAsync(() => p.Stderr.Contains("ztunnel ready", StringComparison.Ordinal), "agent ready", 30_000);
        Assert.Equal(0, Kill(p.Pid, 15));
        int code = await p.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, code);
        Assert.Contains("draining (SIGTERM)", p.Stderr, StringComparison.Ordinal);
        Assert.Contains("drained", p.Stderr, StringComparison.Ordinal);
    }

    /// <summary>Issue 13, finding 1: started twice with one config, the second agent must not share the ports.</summary>
    [Fact]
    public async Task A_second_agent_on_the_same_addresses_exits_1_saying_another_ztunnel_is_running()
    {
        string ip = $"127.{Random.Shared.Next(100, 200)}.{Random.Shared.Next(1, 250)}.{Random.Shared.Next(2, 250)}";
        var first = Write("first.yaml", $"""
            listeners:
              outbound: {ip}:0
              inbound: {ip}:0
              hbone: {ip}:0
              socks5: {ip}:0
            admin: {ip}:0
            metrics: {ip}:0
            readiness: {ip}:0
            """);
        using var running = new ZtunnelProcess("--config", first, "--state-dir", Path.Combine(_dir, "state"));
        await TwoNodeMesh.EventuallyAsync(() => running.Stderr.Contains("ztunnel ready", StringComparison.Ordinal), "first agent ready", 30_000);
        var bound = System.Text.RegularExpressions.Regex.Matches(running.Stderr, @"(\w+)=(127\.[\d.]+:\d+)")
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        Assert.True(bound.Count == 7, $"listeners of the first agent: {running.Stderr}");

        var second = Write("second.yaml", $"""
            listeners:
              outbound: {bound["outbound"]}
              inbound: {bound["inbound"]}
              hbone: {bound["hbone"]}
              socks5: {bound["socks5"]}
            admin: {bound["admin"]}
            metrics: {bound["metrics"]}
            readiness: {bound["readiness"]}
            """);
        var (code, _, stderr) = await ZtunnelProcess.RunAsync("--config", second, "--state-dir", Path.Combine(_dir, "state2"));
        Assert.Equal(1, code);
        Assert.Contains($"cannot listen on {bound["outbound"]} for outbound: the address is already in use (another ztunnel running?)", stderr, StringComparison.Ordinal);

        // The first one still serves, alone.
        var (status, _) = await TwoNodeMesh.GetAsync(IPEndPoint.Parse(bound["readiness"]), "/healthz/ready");
        Assert.Equal(200, status);
    }

    /// <summary>Issue 13, finding 1: two listeners on one address are a config error, found by --validate.</summary>
    [Fact]
    public async Task Validate_refuses_two_listeners_on_one_address()
    {
        var path = Write("clash.yaml", """
            listeners:
              outbound: 127.0.0.1:15001
              socks5: 127.0.0.1:15001
            """);
        var (code, _, stderr) = await ZtunnelProcess.RunAsync("--config", path, "--validate");
        Assert.Equal(1, code);
        Assert.Contains($"{path}:3:", stderr, StringComparison.Ordinal);
        Assert.Contains("listeners.socks5: 127.0.0.1:15001 overlaps listeners.outbound (127.0.0.1:15001)", stderr, StringComparison.Ordinal);
    }

    /// <summary>Issue 13, finding 6: a folder given as the config says so, not "permission denied".</summary>
    [Fact]
    public async Task A_folder_given_as_the_config_is_called_a_folder()
    {
        var (code, _, stderr) = await ZtunnelProcess.RunAsync("--config", _dir, "--validate");
        Assert.Equal(1, code);
        Assert.Contains("is a folder, not a file", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("permission denied", stderr, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Issue 13, finding 2: an empty config at start-up is refused with a message that says what to write.</summary>
    [Fact]
    public async Task An_empty_config_file_is_refused_at_start_up()
    {
        var path = Write("empty.yaml", "");
        var (code, _, stderr) = await ZtunnelProcess.RunAsync("--config", path, "--state-dir", Path.Combine(_dir, "state"));
        Assert.Equal(1, code);
        Assert.Contains("the config file is empty", stderr, StringComparison.Ordinal);
        Assert.Contains("write {}", stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// Issue 13, finding 8: a connection accepted before SIGTERM is served to completion within drainTimeout, even
    /// when it is still in its SOCKS5 handshake when the drain begins (it is not tracked as a connection yet).
    /// </summary>
    [Fact]
    public async Task Sigterm_serves_a_connection_still_in_its_socks5_handshake_to_completion()
    {
        int octet = Random.Shared.Next(100, 200), subnet = Random.Shared.Next(1, 250);
        var clientIp = IPAddress.Parse($"127.{octet}.{subnet}.10");
        await using var echo = new EchoServer(IPAddress.Parse($"127.{octet}.{subnet}.20"));
        var path = Write("drain.yaml", $"""
            listeners:
              outbound: {clientIp}:0
              inbound: {clientIp}:0
              hbone: {clientIp}:0
              socks5: {clientIp}:0
            admin: {clientIp}:0
            metrics: {clientIp}:0
            readiness: {clientIp}:0
            drainTimeout: 20s
            workloads:
            - uid: test//v1/Pod/default/client
              name: client
              namespace: default
              workloadIps: [{clientIp}]
              protocol: HBONE
            """);
        using var agent = new ZtunnelProcess("--config", path, "--state-dir", Path.Combine(_dir, "state"));
        await TwoNodeMesh.EventuallyAsync(() => agent.Stderr.Contains("ztunnel ready", StringComparison.Ordinal), "agent ready", 30_000);
        var socks = IPEndPoint.Parse(System.Text.RegularExpressions.Regex.Match(agent.Stderr, @"socks5=(127\.[\d.]+:\d+)").Groups[1].Value);

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Bind(new IPEndPoint(clientIp, 0));
        await client.ConnectAsync(socks).WaitAsync(Socks5Client.Timeout);
        await client.SendAsync(new byte[] { 5, 1, 0 }, SocketFlags.None).WaitAsync(Socks5Client.Timeout);
        var greeting = new byte[2];
        await Socks5Client.ReadExactlyAsync(client, greeting); // the agent's handler is now mid-handshake

        Assert.Equal(0, Kill(agent.Pid, 15));
        await TwoNodeMesh.EventuallyAsync(() => agent.Stderr.Contains("draining (SIGTERM)", StringComparison.Ordinal), "drain started", 30_000);

        // Finish the handshake after the drain began: CONNECT to the echo server (plain TCP, outside the mesh).
        var request = new byte[10];
        request[0] = 5;
        request[1] = 1;
        request[3] = 1;
        echo.EndPoint.Address.TryWriteBytes(request.AsSpan(4), out _);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(8), (ushort)echo.EndPoint.Port);
        await client.SendAsync(request, SocketFlags.None).WaitAsync(Socks5Client.Timeout);
        var reply = new byte[10];
        await Socks5Client.ReadExactlyAsync(client, reply);
        Assert.True(reply[1] == 0, $"SOCKS reply {reply[1]}; agent log:\n{agent.Stderr}");
        await client.SendAsync("served after SIGTERM"u8.ToArray(), SocketFlags.None).WaitAsync(Socks5Client.Timeout);
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal("served after SIGTERM", System.Text.Encoding.ASCII.GetString(await Socks5Client.ReadToEndAsync(client)));

        Assert.Equal(0, await agent.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("drained", agent.Stderr, StringComparison.Ordinal);
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
