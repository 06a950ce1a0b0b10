using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ambient.Waypoint.Tests.Support;

/// <summary>
/// Skips (with the reason) when node or @grpc/grpc-js is missing. The scripts reuse the npm packages test.sh installs
/// for the control-plane interop test (tests/Mesh.Tests/ControlPlane/interop, pinned by its package-lock).
/// </summary>
public sealed class GrpcJsFactAttribute : FactAttribute
{
    public GrpcJsFactAttribute()
    {
        if (GrpcJs.Node() is null)
        {
            Skip = "node not found on PATH or at /usr/bin/node: the @grpc/grpc-js tests need it.";
        }
        else if (!Directory.Exists(Path.Combine(GrpcJs.NodeModules(), "@grpc", "grpc-js")))
        {
            Skip = $"@grpc/grpc-js is not installed in {GrpcJs.NodeModules()}: run 'npm ci' there (test.sh does).";
        }
    }
}

/// <summary>
/// gRPC on Node's own stack (@grpc/grpc-js) for the end-to-end tests: backends on the echo pods' addresses
/// (<see cref="Servers"/>) and a client in the client pod (<see cref="CallAsync"/>), both loading EndToEnd/grpc/echo.proto.
/// </summary>
internal static class GrpcJs
{
    public static string? Node()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin"))
        {
            string candidate = Path.Combine(dir, "node");
            if (dir.Length > 0 && File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    public static string NodeModules([CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "..", "Mesh.Tests", "ControlPlane", "interop", "node_modules"));

    private static string Dir([CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "EndToEnd", "grpc"));

    private static string Proto => Path.Combine(Dir(), "echo.proto");

    /// <summary>Runs one of the Node scripts next to echo.proto with <paramref name="args"/>; returns its stdout.</summary>
    public static async Task<string> RunAsync(string script, params string[] args)
    {
        var psi = Start(script, proto: false);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            p.Kill(entireProcessTree: true);
            throw;
        }
        string output = await stdout;
        Assert.True(p.ExitCode == 0 && output.Length > 0, $"{script} exited {p.ExitCode}: {await stderr}");
        return output;
    }

    private static ProcessStartInfo Start(string script, bool proto = true)
    {
        var psi = new ProcessStartInfo(Node()!)
        {
            WorkingDirectory = Dir(),
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["NODE_PATH"] = NodeModules();
        if (Environment.GetEnvironmentVariable("GRPCJS_TRACE") is { } trace)
        {
            psi.Environment["GRPC_TRACE"] = trace;
            psi.Environment["GRPC_VERBOSITY"] = "DEBUG";
        }
        psi.ArgumentList.Add(Path.Combine(Dir(), script));
        if (proto)
        {
            psi.ArgumentList.Add(Proto);
        }
        return psi;
    }

    /// <summary>A call's outcome as the grpc-js client saw it: the status code, its message, replies and trailers.</summary>
    public sealed record Result(int Code, string Details, IReadOnlyList<JsonObject> Replies, IReadOnlyDictionary<string, string> Trailers)
    {
        public string? Backend => Replies.Count > 0 ? (string?)Replies[0]["backend"] : null;

        public override string ToString() => $"code {Code} ({Details}), {Replies.Count} replies from {Backend ?? "-"}";
    }

    /// <summary>
    /// Runs <paramref name="calls"/> (objects with method Say/Count/Other, text, fail_code, count, padding, metadata)
    /// one after the other on one channel from the client pod, through <paramref name="socks"/> to <paramref name="target"/>.
    /// </summary>
    public static async Task<IReadOnlyList<Result>> CallAsync(IPAddress pod, IPEndPoint socks, IPEndPoint target, params object[] calls)
    {
        var psi = Start("grpc-client.js");
        psi.ArgumentList.Add(pod.ToString());
        psi.ArgumentList.Add(socks.ToString());
        psi.ArgumentList.Add(target.ToString());
        psi.ArgumentList.Add(JsonSerializer.Serialize(calls));
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            p.Kill(entireProcessTree: true);
            throw;
        }
        string output = await stdout;
        if (Environment.GetEnvironmentVariable("GRPCJS_TRACE") is not null)
        {
            await File.WriteAllTextAsync(Environment.GetEnvironmentVariable("GRPCJS_TRACE_FILE")!, await stderr);
        }
        Assert.True(p.ExitCode == 0 && output.Length > 0, $"grpc-client.js exited {p.ExitCode}: {await stderr}");
        var results = new List<Result>();
        foreach (var node in JsonNode.Parse(output)!.AsArray())
        {
            var o = node!.AsObject();
            var trailers = new Dictionary<string, string>();
            foreach (var (k, v) in o["trailers"]!.AsObject())
            {
                trailers[k] = (string)v!;
            }
            results.Add(new Result((int)o["code"]!, (string)o["details"]!, [.. o["replies"]!.AsArray().Select(r => r!.AsObject())], trailers));
        }
        return results;
    }

    /// <summary>grpc-js servers, one per pod address, on ephemeral ports; disposed by closing their stdin.</summary>
    public sealed class Servers : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly SemaphoreSlim _acks;

        private Servers(Process process, SemaphoreSlim acks)
        {
            _process = process;
            _acks = acks;
        }

        public required IReadOnlyDictionary<string, int> Ports { get; init; }

        public static async Task<Servers> StartAsync(params (string Name, IPAddress Address)[] backends)
        {
            var psi = Start("grpc-server.js");
            foreach (var (name, address) in backends)
            {
                psi.ArgumentList.Add($"{name}={address}");
            }
            var process = Process.Start(psi)!;
            var ports = new ConcurrentDictionary<string, int>();
            var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var stderr = new ConcurrentQueue<string>();
            var acks = new SemaphoreSlim(0);
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { Length: > 0 } ack && ack.Contains("failFirst", StringComparison.Ordinal))
                {
                    acks.Release();
                }
                else if (e.Data is { Length: > 0 } line && JsonNode.Parse(line) is JsonObject o && o["port"] is { } port)
                {
                    ports[(string)o["name"]!] = (int)port;
                    if (ports.Count == backends.Length)
                    {
                        all.TrySetResult();
                    }
                }
            };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { stderr.Enqueue(e.Data); } };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                await all.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                process.Kill(entireProcessTree: true);
                process.Dispose();
                acks.Dispose();
                throw new TimeoutException($"grpc-server.js did not listen within 30 s: {string.Join('\n', stderr)}");
            }
            return new Servers(process, acks) { Ports = ports };
        }

        /// <summary>The next <paramref name="n"/> Say calls (on any backend) fail with UNAVAILABLE.</summary>
        public async Task FailFirstAsync(int n)
        {
            await _process.StandardInput.WriteLineAsync($"fail-first={n}");
            await _process.StandardInput.FlushAsync();
            Assert.True(await _acks.WaitAsync(TimeSpan.FromSeconds(10)), "grpc-server.js did not take the fail-first order");
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                _process.StandardInput.Close();
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception ex) when (ex is TimeoutException or IOException or InvalidOperationException)
            {
                _process.Kill(entireProcessTree: true);
            }
            _process.Dispose();
            _acks.Dispose();
        }
    }
}
