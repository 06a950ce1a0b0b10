using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Ambient.Ztunnel.Tests.InPod.Support;

/// <summary>
/// A long-running child (an agent, an app in a pod, tcpdump) whose stdout and stderr are collected line by line, so a
/// test can wait for a line (bounded) instead of sleeping, and dump everything when it fails.
/// </summary>
internal sealed partial class Daemon : IAsyncDisposable
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigInt = 2;

    private readonly Process _process;
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private event Action? LineArrived;

    private Daemon(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public int Pid => _process.Id;

    public bool HasExited => _exited.Task.IsCompleted;

    public int ExitCode => HasExited ? _process.ExitCode : throw new InvalidOperationException($"{Name} is still running");

    public static Daemon Start(string name, string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var d = new Daemon(name, p);
        p.OutputDataReceived += (_, e) => d.Collect(e.Data, d._stdout, d._stdoutClosed);
        p.ErrorDataReceived += (_, e) => d.Collect(e.Data, d._stderr, d._stderrClosed);
        p.Exited += (_, _) => d._exited.TrySetResult();
        if (!p.Start())
        {
            throw new InvalidOperationException($"cannot start {file}");
        }
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return d;
    }

    private void Collect(string? line, List<string> into, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
            LineArrived?.Invoke();
            return;
        }
        lock (_lock)
        {
            into.Add(line);
        }
        LineArrived?.Invoke();
    }

    public IReadOnlyList<string> Stdout
    {
        get
        {
            lock (_lock)
            {
                return [.. _stdout];
            }
        }
    }

    public IReadOnlyList<string> Stderr
    {
        get
        {
            lock (_lock)
            {
                return [.. _stderr];
            }
        }
    }

    public string Describe() =>
        $"--- {Name} (pid {Pid}{(HasExited ? $", exited {_process.ExitCode}" : "")}) stdout:\n{string.Join('\n', Stdout)}\n--- {Name} stderr:\n{string.Join('\n', Stderr)}";

    /// <summary>Waits until a line on stdout or stderr (from <paramref name="skip"/> lines on) matches; fails with the output when the deadline passes or the process exits first.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, bool stderr = false, int skip = 0)
    {
        using var signal = new SemaphoreSlim(0);
        void OnLine() => signal.Release();
        LineArrived += OnLine;
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            while (true)
            {
                var lines = stderr ? Stderr : Stdout;
                for (int i = skip; i < lines.Count; i++)
                {
                    if (match(lines[i]))
                    {
                        return lines[i];
                    }
                }
                if (HasExited && (stderr ? _stderrClosed : _stdoutClosed).Task.IsCompleted)
                {
                    throw new InvalidOperationException($"{Name} exited before the expected line appeared\n{Describe()}");
                }
                try
                {
                    await signal.WaitAsync(TimeSpan.FromMilliseconds(200), cts.Token);
                }
                catch (OperationCanceledException)
                {
                    throw new TimeoutException($"no matching line from {Name} within {timeout.TotalSeconds:0}s\n{Describe()}");
                }
            }
        }
        finally
        {
            LineArrived -= OnLine;
        }
    }

    public void Signal(int signal)
    {
        if (!HasExited)
        {
            _ = kill(_process.Id, signal);
        }
    }

    /// <summary>Waits (bounded) for the process to exit and its output to be drained.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await Task.WhenAll(_exited.Task, _stdoutClosed.Task, _stderrClosed.Task).WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!HasExited)
        {
            Command.Kill(_process);
        }
        await WaitForExitAsync(TimeSpan.FromSeconds(10));
        _process.Dispose();
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
