using System.Diagnostics;
using System.Text;

namespace Ambient.Ztunnel.Tests.InPod.Support;

internal sealed record CommandResult(string CommandLine, int ExitCode, string Stdout, string Stderr)
{
    public bool Ok => ExitCode == 0;

    public override string ToString() => $"`{CommandLine}` exited {ExitCode}\nstdout: {Stdout.TrimEnd()}\nstderr: {Stderr.TrimEnd()}";
}

/// <summary>Runs a short-lived command to completion with a deadline; a command that overruns is killed with its children.</summary>
internal static class Command
{
    public static async Task<CommandResult> RunAsync(
        string file,
        IEnumerable<string> args,
        TimeSpan timeout,
        string? stdin = null,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        if (workingDirectory is not null)
        {
            psi.WorkingDirectory = workingDirectory;
        }
        if (env is not null)
        {
            foreach (var (k, v) in env)
            {
                psi.Environment[k] = v;
            }
        }
        string line = $"{file} {string.Join(' ', psi.ArgumentList)}";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {line}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            if (stdin is not null)
            {
                await p.StandardInput.WriteAsync(stdin).WaitAsync(timeout);
            }
            p.StandardInput.Close();
            using var cts = new CancellationTokenSource(timeout);
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill(p);
            string partialOut = await stdout.WaitAsync(TimeSpan.FromSeconds(5));
            string partialErr = await stderr.WaitAsync(TimeSpan.FromSeconds(5));
            throw new TimeoutException($"`{line}` did not finish within {timeout.TotalSeconds:0}s\nstdout: {partialOut}\nstderr: {partialErr}");
        }
        return new CommandResult(line, p.ExitCode, await stdout.WaitAsync(timeout), await stderr.WaitAsync(timeout));
    }

    /// <summary>Like <see cref="RunAsync"/> but a non-zero exit is an exception that carries the output.</summary>
    public static async Task<CommandResult> CheckAsync(string file, IEnumerable<string> args, TimeSpan timeout, string? stdin = null, string? workingDirectory = null)
    {
        var r = await RunAsync(file, args, timeout, stdin, workingDirectory);
        if (!r.Ok)
        {
            throw new InvalidOperationException(r.ToString());
        }
        return r;
    }

    internal static void Kill(Process p)
    {
        try
        {
            p.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}
