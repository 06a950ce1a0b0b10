using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Ambient.Ztunnel.Tests.InPod.Support;
using Xunit.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// Issue 12, section 4: a newer agent started on a node while the old one runs (a DaemonSet rollout with
/// <c>maxSurge: 1</c>) takes every pod over with its listening sockets, passed over a unix socket; the old agent stops
/// accepting, drains and exits. Under a client opening 200 connections per second through the mesh, neither upgrade
/// (the client's node, then the server's) refuses or resets a single connection, and a long-lived connection lives on
/// in the old agent until its drain deadline.
/// </summary>
public sealed class UpgradeHandoverTests(ITestOutputHelper output)
{
    private const int AppPort = 8080;
    private const int EchoPort = 9090;
    private const int Rate = 200;
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(4);

    [RootFact]
    public async Task Upgrade_UnderLoad_RefusesAndResetsNothing_LongLivedConnectionLastsUntilTheDrainDeadline()
    {
        var client = new PodSpec("node-a", "client", "shop", "10.10.1.10");
        var server = new PodSpec("node-b", "server", "shop", "10.10.2.10");
        await using var cluster = await InPodCluster.StartAsync(
            new ClusterSpec { Nodes = ["node-a", "node-b"], Pods = [client, server], DrainTimeout = Drain }, output.WriteLine);
        var daemons = new List<Daemon>();
        try
        {
            await cluster.StartServerAsync(server.Name, AppPort);
            await File.WriteAllTextAsync(Path.Combine(cluster.Root, "echo-server.py"), EchoServerScript);
            await File.WriteAllTextAsync(Path.Combine(cluster.Root, "long-lived.py"), LongLivedScript);
            var echo = Start(cluster, daemons, server, "echo-server.py", EchoPort.ToString(CultureInfo.InvariantCulture));
            await echo.WaitForLineAsync(l => l == "LISTENING", InPodCluster.StepTimeout);
            var warmUp = await cluster.CurlAsync(client.Name, $"http://{server.Ip}:{AppPort}/warm-up");
            Assert.True(warmUp.Ok, warmUp.ToString());

            string stop = Path.Combine(cluster.Root, "load.stop");
            var load = Start(cluster, daemons, client, Path.Combine(Binaries.RepoRoot, "scripts", "conn-load.py"), server.Ip, AppPort.ToString(CultureInfo.InvariantCulture), Rate.ToString(CultureInfo.InvariantCulture), stop, "120");
            await load.WaitForLineAsync(l => l.StartsWith("PROGRESS", StringComparison.Ordinal), InPodCluster.StepTimeout);

            // The client's node first (its pod's outbound 15001), then the server's (15008 and the HBONE connections
            // the client's agent pools to it).
            foreach (var node in new[] { "node-a", "node-b" })
            {
                await UpgradeAsync(cluster, daemons, node, node == "node-a" ? client : server, client, server);
            }

            await File.WriteAllTextAsync(stop, "");
            string resultLine = await load.WaitForLineAsync(l => l.StartsWith("RESULT ", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            using var result = JsonDocument.Parse(resultLine["RESULT ".Length..]);
            var r = result.RootElement;
            int Count(string name) => r.GetProperty(name).GetInt32();
            output.WriteLine($"load through two upgrades: {Count("attempted")} connections attempted in {r.GetProperty("seconds").GetDouble():0.0} s, " +
                $"{Count("ok")} answered, {Count("refused")} refused, {Count("reset")} reset, {Count("closed")} closed without an answer, " +
                $"{Count("timeout")} timed out, {Count("other")} other errors; samples: {r.GetProperty("samples")}");
            Assert.True(Count("attempted") >= Rate, $"the load generator made only {Count("attempted")} connections");
            Assert.Equal(0, Count("refused"));
            Assert.Equal(0, Count("reset"));
            Assert.Equal(0, Count("closed"));
            Assert.Equal(0, Count("timeout"));
            Assert.Equal(0, Count("other"));
            Assert.Equal(Count("attempted"), Count("ok"));
        }
        catch
        {
            // The agents' access logs run to thousands of lines, more than a CI log keeps: the whole of it goes to a
            // file that outlives the cluster, and the test output names it.
            string describe = cluster.Describe() + "\n" + string.Join('\n', daemons.Select(d => d.Describe()));
            string saved = Path.Combine(Path.GetTempPath(), "ambient-test-failures", $"upgrade-under-load-{DateTime.UtcNow:yyyyMMddTHHmmss}.log");
            Directory.CreateDirectory(Path.GetDirectoryName(saved)!);
            await File.WriteAllTextAsync(saved, describe);
            output.WriteLine($"the agents' and apps' output: {saved}");
            output.WriteLine(describe);
            throw;
        }
        finally
        {
            foreach (var d in daemons)
            {
                await d.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// A successor whose mesh sources have not synced (here an MCP registry nobody serves; in a cluster, the Kubernetes
    /// source still listing) would serve the pods with a partial view of the mesh: inbound connections refused as "no
    /// local workload", policies missing. It must leave them to the running agent until it has synced.
    /// </summary>
    [RootFact]
    public async Task Upgrade_SuccessorNotYetSynced_LeavesThePodsToTheRunningAgent()
    {
        var client = new PodSpec("node-a", "client", "shop", "10.10.1.10");
        var server = new PodSpec("node-b", "server", "shop", "10.10.2.10");
        await using var cluster = await InPodCluster.StartAsync(
            new ClusterSpec { Nodes = ["node-a", "node-b"], Pods = [client, server], DrainTimeout = Drain }, output.WriteLine);
        await cluster.StartServerAsync(server.Name, AppPort);
        var before = await cluster.CurlAsync(client.Name, $"http://{server.Ip}:{AppPort}/before");
        Assert.True(before.Ok, before.ToString());

        var old = cluster.Agent("node-b");
        // Nothing listens on port 1 in the successor's own network namespace: its MCP source never syncs.
        var successor = await cluster.StartSuccessorAgentNoWaitAsync("node-b", "--mcp-address", "http://127.0.0.1:1");
        try
        {
            await successor.WaitForLineAsync(l => l.Contains("taking its pods over once the mesh sources have synced", StringComparison.Ordinal), InPodCluster.StepTimeout, stderr: true);
            await old.WaitForLineAsync(l => l.Contains("checked that this agent runs", StringComparison.Ordinal), InPodCluster.StepTimeout, stderr: true);
            // Meanwhile the running agent serves the pods, and keeps them: requests through it for a few seconds.
            for (int i = 0; i < 3; i++)
            {
                var r = await cluster.CurlAsync(client.Name, $"http://{server.Ip}:{AppPort}/while-waiting-{i}");
                Assert.True(r.Ok, r.ToString());
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
            Assert.False(successor.HasExited, successor.Describe());
            Assert.DoesNotContain(old.Stderr, l => l.Contains("pods over to the newer agent", StringComparison.Ordinal));
            Assert.DoesNotContain(successor.Stderr, l => l.Contains("took over pod", StringComparison.Ordinal) || l.Contains("ztunnel ready", StringComparison.Ordinal));
        }
        catch
        {
            output.WriteLine(old.Describe());
            output.WriteLine(successor.Describe());
            throw;
        }
        finally
        {
            await successor.DisposeAsync();
        }

        // The successor went away (a rollout given up): the running agent still serves, and still owns the pods.
        var after = await cluster.CurlAsync(client.Name, $"http://{server.Ip}:{AppPort}/after");
        Assert.True(after.Ok, after.ToString());
        Assert.False(old.HasExited);
    }

    /// <summary>
    /// Opens a long-lived connection through the node's agent, starts the successor, and follows the old agent to its
    /// exit: it hands over, stops accepting, keeps the long-lived connection until the drain deadline, then exits 0.
    /// </summary>
    private async Task UpgradeAsync(InPodCluster cluster, List<Daemon> daemons, string node, PodSpec pod, PodSpec client, PodSpec server)
    {
        var longLived = Start(cluster, daemons, client, "long-lived.py", server.Ip, EchoPort.ToString(CultureInfo.InvariantCulture));
        await longLived.WaitForLineAsync(l => l.StartsWith("ECHO 3 ", StringComparison.Ordinal), InPodCluster.StepTimeout);

        var old = cluster.Agent(node);
        int oldLines = old.Stderr.Count;
        var successor = await cluster.StartSuccessorAgentAsync(node);
        await old.WaitForLineAsync(l => l.Contains("pods over to the newer agent", StringComparison.Ordinal), InPodCluster.StepTimeout, stderr: true, skip: oldLines);
        long handedOver = Stopwatch.GetTimestamp();
        Assert.True(await old.WaitForExitAsync(Drain + TimeSpan.FromSeconds(30)), $"the old agent on {node} did not exit after handing over");
        output.WriteLine($"{node}: old agent (pid {old.Pid}) exited {old.ExitCode} {Stopwatch.GetElapsedTime(handedOver).TotalSeconds:0.0} s after handing over (drainTimeout {Drain.TotalSeconds:0} s)");
        Assert.Equal(0, old.ExitCode);

        Assert.Contains(successor.Stderr, l => l.Contains($"took over pod {pod.Namespace}/{pod.Name}", StringComparison.Ordinal));
        Assert.Contains(successor.Stderr, l => l.Contains($"previous agent (pid {old.Pid}) released 1 pods", StringComparison.Ordinal));
        Assert.DoesNotContain(successor.Stderr, l => l.Contains("captured pod", StringComparison.Ordinal) || l.Contains("re-adopted pod", StringComparison.Ordinal));
        Assert.Contains(old.Stderr, l => l.Contains($"handed over to a newer agent (pid {successor.Pid})", StringComparison.Ordinal));
        // The long-lived connection was still open at the deadline: the old agent closed it then, not earlier.
        Assert.Contains(old.Stderr, l => l.Contains("drain deadline passed: closing", StringComparison.Ordinal));

        string closed = await longLived.WaitForLineAsync(l => l.StartsWith("CLOSED", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var echoes = longLived.Stdout.Where(l => l.StartsWith("ECHO ", StringComparison.Ordinal)).ToList();
        long lastEcho = long.Parse(echoes[^1].Split(' ')[2], CultureInfo.InvariantCulture);
        // Stopwatch and Python's monotonic_ns read the same CLOCK_MONOTONIC on Linux.
        var aliveAfterHandover = TimeSpan.FromTicks((lastEcho - handedOver) * TimeSpan.TicksPerSecond / Stopwatch.Frequency);
        output.WriteLine($"{node}: long-lived connection echoed {echoes.Count} times, the last {aliveAfterHandover.TotalSeconds:0.0} s after the hand-over; then {closed}");
        Assert.True(aliveAfterHandover > Drain - TimeSpan.FromSeconds(1.5),
            $"the long-lived connection stopped echoing {aliveAfterHandover.TotalSeconds:0.0} s after the hand-over, before the {Drain.TotalSeconds:0} s drain deadline");
        Assert.Equal(0, await ProbeExitAsync(cluster, client, server));
    }

    /// <summary>A fresh request after the upgrade goes through the successor.</summary>
    private static async Task<int> ProbeExitAsync(InPodCluster cluster, PodSpec client, PodSpec server) =>
        (await cluster.CurlAsync(client.Name, $"http://{server.Ip}:{AppPort}/after-upgrade")).ExitCode;

    private static Daemon Start(InPodCluster cluster, List<Daemon> daemons, PodSpec pod, string script, params string[] args)
    {
        var d = Daemon.Start($"{script} in {pod.Name}", "nsenter", [$"--net={cluster.PodNetns(pod.Name)}", "python3", "-u", Path.Combine(cluster.Root, script), .. args]);
        daemons.Add(d);
        return d;
    }

    /// <summary>A line echo server (a thread per connection).</summary>
    private const string EchoServerScript = """
        import socket, sys, threading
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(sys.argv[1])))
        s.listen(16)
        print("LISTENING", flush=True)
        def serve(c):
            with c:
                while True:
                    data = c.recv(4096)
                    if not data:
                        return
                    c.sendall(data)
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        """;

    /// <summary>One connection kept open: a line every 100 ms, echoed back; prints each echo with CLOCK_MONOTONIC, and how it ended.</summary>
    private const string LongLivedScript = """
        import socket, sys, time
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
        c.settimeout(10)
        f = c.makefile("rb")
        n = 0
        try:
            while True:
                n += 1
                c.sendall(f"ping {n}\n".encode())
                line = f.readline()
                if not line:
                    print(f"CLOSED eof after {n - 1} echoes {time.monotonic_ns()}", flush=True)
                    break
                print(f"ECHO {n} {time.monotonic_ns()}", flush=True)
                time.sleep(0.1)
        except OSError as e:
            print(f"CLOSED {type(e).__name__} after {n - 1} echoes {time.monotonic_ns()}", flush=True)
        """;
}
