using System.Diagnostics;
using System.Text;

namespace Ambient.Cni.Tests.Support;

internal sealed record PluginRun(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// Runs ambient-cni as a real child process, the way a container runtime does. By default it runs the
/// build output with <c>dotnet ambient-cni.dll</c>: it is always up to date with the code under test and
/// costs no NativeAOT compile (tens of seconds) per test run. Set <c>AMBIENT_CNI_PLUGIN</c> to a published
/// native binary to run the same suite against what ships.
/// </summary>
internal static class PluginProcess
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static (string FileName, string[] Prefix) Command()
    {
        string? native = Environment.GetEnvironmentVariable("AMBIENT_CNI_PLUGIN");
        if (!string.IsNullOrEmpty(native))
        {
            return (native, []);
        }

        string dll = Path.Combine(AppContext.BaseDirectory, "ambient-cni.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException("ambient-cni.dll is not next to the tests; is the project reference to cni-plugin intact?", dll);
        }

        return ("dotnet", [dll]);
    }

    public static Task<PluginRun> RunAsync(
        IReadOnlyDictionary<string, string> env,
        string? stdin,
        string[]? args = null,
        TimeSpan? timeout = null)
    {
        var (file, prefix) = Command();
        return RunExecutableAsync(file, [.. prefix, .. args ?? []], env, stdin, timeout ?? DefaultTimeout);
    }

    /// <summary>Runs any CNI plugin executable (also the reference plugins in the chaining tests).</summary>
    public static async Task<PluginRun> RunExecutableAsync(
        string fileName,
        string[] args,
        IReadOnlyDictionary<string, string> env,
        string? stdin,
        TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // Only what the test sets: a CNI_* variable leaking in from the environment would change the verdict.
        foreach (string key in psi.Environment.Keys.ToList())
        {
            if (key.StartsWith("CNI_", StringComparison.Ordinal))
            {
                psi.Environment.Remove(key);
            }
        }

        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {fileName}");
        try
        {
            var stdoutTask = process.StandardOutput.ReadToEndAsync();
            var stderrTask = process.StandardError.ReadToEndAsync();
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin).WaitAsync(timeout);
            }

            process.StandardInput.Close();
            await process.WaitForExitAsync().WaitAsync(timeout);
            return new PluginRun(process.ExitCode, await stdoutTask.WaitAsync(timeout), await stderrTask.WaitAsync(timeout));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }
}
