using System.Diagnostics;

namespace Ambient.Ztunnel.Tests.Support;

/// <summary>Runs the built ztunnel (the test's own build output) as a separate process, as a user would.</summary>
internal sealed class ZtunnelProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _stdout = new();
    private readonly System.Text.StringBuilder _stderr = new();

    public ZtunnelProcess(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "ztunnel.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (_stdout) { _stdout.AppendLine(e.Data); } } };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_stderr) { _stderr.AppendLine(e.Data); } } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public string Stdout { get { lock (_stdout) { return _stdout.ToString(); } } }

    public string Stderr { get { lock (_stderr) { return _stderr.ToString(); } } }

    public async Task<int> WaitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        _process.WaitForExit(); // flushes the async output readers
        return _process.ExitCode;
    }

    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        using var p = new ZtunnelProcess(args);
        int code = await p.WaitAsync(TimeSpan.FromSeconds(60));
        return (code, p.Stdout, p.Stderr);
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
