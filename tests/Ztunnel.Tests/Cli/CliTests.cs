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
        foreach (var option in new[] { "--config", "--validate", "--node", "--state-dir", "--access-log", "--log-level" })
        {
            Assert.Contains(option, stdout, StringComparison.Ordinal);
        }
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
