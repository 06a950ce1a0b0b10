using System.Diagnostics;
using System.Text;

namespace Ambient.Waypoint.Tests.Cli;

/// <summary>The built <c>waypoint</c> as a user runs it: flags, --validate, and SIGTERM.</summary>
public sealed class WaypointProcessTests
{
    private sealed class WaypointProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _out = new();
        private readonly StringBuilder _err = new();

        public WaypointProcess(params string[] args)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "waypoint.dll"));
            foreach (var a in args)
            {
                psi.ArgumentList.Add(a);
            }
            psi.Environment.Remove("GATEWAY_NAME");
            psi.Environment.Remove("GATEWAY_NAMESPACE");
            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (_out) { _out.AppendLine(e.Data); } } };
            _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_err) { _err.AppendLine(e.Data); } } };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public int Pid => _process.Id;
        public string Stdout { get { lock (_out) { return _out.ToString(); } } }
        public string Stderr { get { lock (_err) { return _err.ToString(); } } }

        public async Task<int> WaitAsync(TimeSpan timeout)
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
            _process.WaitForExit();
            return _process.ExitCode;
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
            _process.Dispose();
        }
    }

    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        using var p = new WaypointProcess(args);
        int code = await p.WaitAsync(TimeSpan.FromSeconds(60));
        return (code, p.Stdout, p.Stderr);
    }

    [Fact]
    public async Task HelpUsageErrorsAndValidate()
    {
        var help = await RunAsync("--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("--gateway NS/NAME", help.Out, StringComparison.Ordinal);

        var noGateway = await RunAsync("--config", "/nonexistent.yaml");
        Assert.Equal(2, noGateway.Code);
        Assert.Contains("give --gateway NAMESPACE/NAME", noGateway.Err, StringComparison.Ordinal);

        var badGateway = await RunAsync("--gateway", "just-a-name");
        Assert.Equal(2, badGateway.Code);
        Assert.Contains("--gateway takes NAMESPACE/NAME, not 'just-a-name'", badGateway.Err, StringComparison.Ordinal);

        var dir = Directory.CreateTempSubdirectory("waypoint-validate-").FullName;
        try
        {
            string good = Path.Combine(dir, "route.yaml");
            await File.WriteAllTextAsync(good, """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: r, namespace: shop}
                spec:
                  parentRefs: [{group: "", kind: Service, name: echo}]
                  rules: [{backendRefs: [{name: echo, port: 80}]}]
                """);
            var valid = await RunAsync("--gateway", "shop/waypoint", "--manifests", good, "--validate");
            Assert.True(valid.Code == 0, valid.Err);
            Assert.Contains("valid", valid.Out, StringComparison.Ordinal);

            await File.WriteAllTextAsync(good, (await File.ReadAllTextAsync(good)).Replace("port: 80", "port: eighty", StringComparison.Ordinal));
            var invalid = await RunAsync("--gateway", "shop/waypoint", "--manifests", good, "--validate");
            Assert.Equal(1, invalid.Code);
            Assert.Contains("route.yaml", invalid.Err, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task SigtermDrainsAndExitsZero()
    {
        var dir = Directory.CreateTempSubdirectory("waypoint-run-").FullName;
        try
        {
            string ip = $"127.{60 + Random.Shared.Next(40)}.{Random.Shared.Next(1, 250)}.40";
            string config = Path.Combine(dir, "config.yaml");
            await File.WriteAllTextAsync(config, $"""
                trustDomain: cluster.local
                listeners:
                  hbone: {ip}:15008
                admin: {ip}:0
                metrics: {ip}:0
                readiness: {ip}:0
                drainTimeout: 2s
                stateDir: {dir}
                """);
            using var p = new WaypointProcess("--gateway", "shop/waypoint", "--config", config);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!p.Stderr.Contains("ready: hbone=", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the waypoint did not start:\n{p.Stderr}");
                await Task.Delay(100);
            }
            Assert.Contains($"hbone={ip}:15008", p.Stderr, StringComparison.Ordinal);
            using (var kill = Process.Start("kill", ["-TERM", p.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            Assert.Equal(0, await p.WaitAsync(TimeSpan.FromSeconds(20)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
