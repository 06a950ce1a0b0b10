using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Ambient.Daemonset.Tests.Support;

internal sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;
}

/// <summary>
/// A child process with its output collected as it comes: install-cni (run from the build output with
/// <c>dotnet install-cni.dll</c>, so the tests always run the current code), ambient-cni, bash.
/// </summary>
internal sealed partial class ChildProcess : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Lock _lock = new();

    private ChildProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Output
    {
        get
        {
            lock (_lock)
            {
                return _stdout.ToString() + _stderr;
            }
        }
    }

    /// <summary>Starts the installer from the test's build output.</summary>
    public static ChildProcess InstallCni(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? env = null) =>
        Start("dotnet", [Dll("install-cni.dll"), .. args], env);

    public static string Dll(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, name);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{name} is not next to the tests; is the project reference intact?", path);
    }

    public static ChildProcess Start(string file, IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? env = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // Only what the test sets: a variable leaking in from the environment would change the verdict.
        foreach (string key in psi.Environment.Keys.ToList())
        {
            if (key.StartsWith("AMBIENT_", StringComparison.Ordinal) || key.StartsWith("CNI_", StringComparison.Ordinal)
                || key is "POD_NAMESPACE" or "KUBERNETES_SERVICE_HOST" or "KUBERNETES_SERVICE_PORT")
            {
                psi.Environment.Remove(key);
            }
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var child = new ChildProcess(process);
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
        }

        process.StandardInput.Close();
        return child;
    }

    /// <summary>Runs to completion (a one-shot command).</summary>
    public static async Task<ProcessResult> RunAsync(string file, IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? env = null, string? stdin = null)
    {
        await using var p = Start(file, args, env, stdin);
        return await p.WaitForExitAsync(DefaultTimeout);
    }

    public static Task<ProcessResult> RunInstallCniAsync(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? env = null) =>
        RunAsync("dotnet", [Dll("install-cni.dll"), .. args], env);

    /// <summary>Waits until the output contains <paramref name="text"/>; fails with the output so far on timeout.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync().WaitAsync(DefaultTimeout);
                if (Output.Contains(text, StringComparison.Ordinal))
                {
                    return;
                }

                throw new InvalidOperationException($"process exited ({_process.ExitCode}) before printing '{text}'; output:\n{Output}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for '{text}'; output:\n{Output}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>SIGTERM, as the kubelet sends when it stops a container.</summary>
    public void Terminate()
    {
        if (!_process.HasExited && Kill(_process.Id, 15) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public async Task<ProcessResult> WaitForExitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        // The parameterless wait also waits for the redirected streams to reach EOF.
        _process.WaitForExit();
        lock (_lock)
        {
            return new ProcessResult(_process.ExitCode, _stdout.ToString(), _stderr.ToString());
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            // Best effort: already gone.
        }

        _process.Dispose();
    }

    private void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            sb.Append(line).Append('\n');
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
