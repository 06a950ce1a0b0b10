using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Ambient.Ztunnel.Tests.Support;

/// <summary>
/// A program the test started (openssl, node, nghttpx, tinyproxy, tcpdump). Output is collected as raw bytes, because
/// some tools (openssl s_client -quiet) print binary HTTP/2 frames. Disposal kills the process tree by its id, so a
/// failing assertion never leaves a daemon behind.
/// </summary>
internal sealed partial class ExternalProcess : IAsyncDisposable
{
    private const int Sigint = 2;
    private readonly Process _process;
    private readonly Output _stdout = new();
    private readonly Output _stderr = new();
    private readonly Task _pumps;

    private ExternalProcess(Process process)
    {
        _process = process;
        _pumps = Task.WhenAll(Pump(process.StandardOutput.BaseStream, _stdout), Pump(process.StandardError.BaseStream, _stderr));
    }

    public string Name { get; private init; } = "";
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public byte[] StdoutBytes => _stdout.Bytes();
    public string Stdout => Encoding.UTF8.GetString(_stdout.Bytes());
    public string Stderr => Encoding.UTF8.GetString(_stderr.Bytes());

    public static ExternalProcess Start(string tool, IEnumerable<string> args, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(ExternalTools.Require(tool))
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {tool}");
        return new ExternalProcess(process) { Name = tool };
    }

    /// <summary>Runs to completion with <paramref name="stdin"/> as input; kills the process if it overruns.</summary>
    public static async Task<ExternalProcess> RunAsync(string tool, IEnumerable<string> args, byte[]? stdin, TimeSpan timeout)
    {
        var p = Start(tool, args);
        try
        {
            if (stdin is not null)
            {
                await p._process.StandardInput.BaseStream.WriteAsync(stdin).AsTask().WaitAsync(timeout);
                await p._process.StandardInput.BaseStream.FlushAsync().WaitAsync(timeout);
            }
            p._process.StandardInput.Close();
            await p.WaitForExitAsync(timeout);
            return p;
        }
        catch
        {
            await p.DisposeAsync();
            throw;
        }
    }

    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout}; stdout: {Stdout}; stderr: {Stderr}");
        }
        // Exit is reported before the pipes are drained; the output is only complete once both pumps end.
        await _pumps.WaitAsync(timeout);
    }

    /// <summary>Waits until the process has printed something that satisfies <paramref name="ready"/>.</summary>
    public async Task WaitForOutputAsync(Func<string, bool> ready, string what, TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (!ready(Stdout + Stderr))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited ({_process.ExitCode}) before {what}; stdout: {Stdout}; stderr: {Stderr}");
            }
            if (Environment.TickCount64 > deadline)
            {
                throw new TimeoutException($"{Name}: timed out waiting for {what}; stdout: {Stdout}; stderr: {Stderr}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Asks the process to finish (SIGINT), as Ctrl-C would: tcpdump then flushes and closes its capture file.</summary>
    public async Task InterruptAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, Sigint);
        }
        await WaitForExitAsync(timeout);
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
            await _pumps.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // Best effort: the process is gone or cannot be waited for any more.
        }
        _process.Dispose();
    }

    private static async Task Pump(Stream from, Output to)
    {
        var buf = new byte[16 * 1024];
        try
        {
            int n;
            while ((n = await from.ReadAsync(buf)) > 0)
            {
                to.Append(buf.AsSpan(0, n));
            }
        }
        catch (IOException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "a MemoryStream holds only managed memory")]
    private sealed class Output
    {
        private readonly Lock _lock = new();
        private readonly MemoryStream _data = new();

        public void Append(ReadOnlySpan<byte> bytes)
        {
            lock (_lock)
            {
                _data.Write(bytes);
            }
        }

        public byte[] Bytes()
        {
            lock (_lock)
            {
                return _data.ToArray();
            }
        }
    }
}
