using System.Diagnostics;
using Ambient.Ztunnel.Tests.InPod.Support;
using Xunit.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// The agent dies and comes back. Its pods keep their capture rules, so while it is gone their traffic is refused,
/// never sent around the mesh in plaintext; the next agent re-adopts them from &lt;stateDir&gt;/pods.json without the pods
/// being re-created. Each test kills agents, so each has a cluster of its own.
/// </summary>
public sealed class AgentRestartTests(ITestOutputHelper output)
{
    private const int AppPort = 8080;

    [RootFact]
    public async Task KilledAgent_NewConnectionsAreRefused_NeverDeliveredInPlaintext()
    {
        var client = new PodSpec("node-a", "client", "shop", "10.10.1.10");
        var legacy = new PodSpec("node-a", "legacy", "legacy", "10.10.1.12", InConfig: false);
        var server = new PodSpec("node-b", "server", "shop", "10.10.2.10");
        await using var cluster = await InPodCluster.StartAsync(new ClusterSpec { Nodes = ["node-a", "node-b"], Pods = [server, client, legacy] }, output.WriteLine);
        try
        {
            var app = await cluster.StartServerAsync(server.Name, AppPort);
            var url = $"http://{server.Ip}:{AppPort}/";
            var warmUp = await cluster.CurlAsync(client.Name, url + "before");
            Assert.True(warmUp.Ok, warmUp.ToString());

            // Client side: node-a's agent dies; client's outbound capture now points at a closed port.
            await KillAsync(cluster, "node-a");
            var rules = await RuleSnapshot.TakeAsync(cluster, client.Name);
            Assert.Contains(rules.Rules("nat"), r => r.EndsWith("-j REDIRECT --to-ports 15001", StringComparison.Ordinal));
            int accepted = app.Stdout.Count;
            string canary = $"PLAINTEXT-CANARY-{Guid.NewGuid():N}";
            CapturedTraffic wire;
            await using (var capture = await cluster.CaptureFabricAsync())
            {
                var r = await cluster.CurlAsync(client.Name, url + canary, canary);
                output.WriteLine($"client -> server with node-a's agent dead: curl exit {r.ExitCode}: {r.Stderr.Trim()}");
                Assert.False(r.Ok, $"the request succeeded without the agent: {r}");
                wire = await capture.StopAsync();
            }
            output.WriteLine(wire.Summary());
            Assert.False(wire.Contains(canary), "the canary crossed the fabric in plaintext");
            Assert.Empty(wire.NotOnPort(15008));
            Assert.DoesNotContain(app.Stdout.Skip(accepted), l => l.StartsWith("ACCEPT", StringComparison.Ordinal));

            // Server side: node-b's agent dies too; plaintext sent to the captured server pod must not reach the app.
            await KillAsync(cluster, "node-b");
            var plain = await cluster.InPodAsync(legacy.Name, "curl", "-sS", "--connect-timeout", "3", "--max-time", "5", url + "legacy");
            output.WriteLine($"legacy -> server with node-b's agent dead: curl exit {plain.ExitCode}: {plain.Stderr.Trim()}");
            Assert.False(plain.Ok, $"plaintext reached the server without its agent: {plain}");
            Assert.DoesNotContain(app.Stdout.Skip(accepted), l => l.StartsWith("ACCEPT", StringComparison.Ordinal));
        }
        catch
        {
            output.WriteLine(cluster.Describe());
            throw;
        }
    }

    [RootFact]
    public async Task RestartedAgent_ReadoptsPodsFromItsStateDir_AndTrafficFlowsAgain()
    {
        var client = new PodSpec("node-a", "client", "shop", "10.10.1.10");
        var server = new PodSpec("node-a", "server", "shop", "10.10.1.11");
        await using var cluster = await InPodCluster.StartAsync(new ClusterSpec { Nodes = ["node-a"], Pods = [client, server] }, output.WriteLine);
        try
        {
            var app = await cluster.StartServerAsync(server.Name, AppPort);
            var url = $"http://{server.Ip}:{AppPort}/";
            var first = await cluster.CurlAsync(client.Name, url + "before");
            Assert.True(first.Ok, first.ToString());
            string registry = Path.Combine(cluster.StateDir("node-a"), "pods.json");
            string saved = await File.ReadAllTextAsync(registry);
            Assert.Contains(cluster.PodNetns(client.Name), saved, StringComparison.Ordinal);
            Assert.Contains(cluster.PodNetns(server.Name), saved, StringComparison.Ordinal);
            var rulesBefore = await RuleSnapshot.TakeAsync(cluster, client.Name);
            var netnsBefore = await NetnsInodesAsync(cluster, client, server);

            await KillAsync(cluster, "node-a");
            var down = await cluster.CurlAsync(client.Name, url + "while-down");
            Assert.False(down.Ok, $"traffic flowed with the agent dead: {down}");

            var sinceStart = Stopwatch.StartNew();
            var agent = await cluster.StartAgentAsync("node-a");
            var startToReady = sinceStart.Elapsed;
            var sinceReady = Stopwatch.StartNew();
            CommandResult? ok = null;
            int attempts = 0;
            // Bounded poll; the time it takes is reported, not asserted.
            while (sinceReady.Elapsed < TimeSpan.FromSeconds(30))
            {
                attempts++;
                var r = await cluster.InPodAsync(client.Name, "curl", "-sS", "--connect-timeout", "2", "--max-time", "5", url + "after");
                if (r.Ok)
                {
                    ok = r;
                    break;
                }
                await Task.Delay(50);
            }
            var readyToTraffic = sinceReady.Elapsed;
            output.WriteLine($"re-adoption: agent process start -> ready {startToReady.TotalMilliseconds:0} ms; ready -> first request through {readyToTraffic.TotalMilliseconds:0} ms ({attempts} attempt(s)); start -> traffic {(startToReady + readyToTraffic).TotalMilliseconds:0} ms");
            Assert.True(ok is not null, "no request went through within 30 s of the restarted agent being ready");
            Assert.Equal("hello from server", ok!.Stdout.Trim());

            // Re-adopted from the registry, not re-announced by the CNI plugin; the pods are the same namespaces and
            // the app process in the server pod never stopped.
            var log = agent.Stderr;
            Assert.Contains(log, l => l.Contains("re-adopted pod shop/client", StringComparison.Ordinal));
            Assert.Contains(log, l => l.Contains("re-adopted pod shop/server", StringComparison.Ordinal));
            Assert.Contains(log, l => l.Contains("2 pods re-adopted", StringComparison.Ordinal));
            Assert.DoesNotContain(log, l => l.Contains("captured pod", StringComparison.Ordinal));
            Assert.Equal(netnsBefore, await NetnsInodesAsync(cluster, client, server));
            Assert.False(app.HasExited);
            Assert.Equal(rulesBefore.AllLines.ToList(), (await RuleSnapshot.TakeAsync(cluster, client.Name)).AllLines.ToList());
            Assert.Superset(new HashSet<int> { 15001, 15006, 15008 }, (await cluster.ListeningPortsAsync(server.Name)).ToHashSet());
        }
        catch
        {
            output.WriteLine(cluster.Describe());
            throw;
        }
    }

    /// <summary>SIGKILL: no drain, no cleanup, exactly what a crash or an OOM kill leaves behind.</summary>
    private static async Task KillAsync(InPodCluster cluster, string node)
    {
        var agent = cluster.Agent(node);
        agent.Signal(Daemon.SigKill);
        Assert.True(await agent.WaitForExitAsync(TimeSpan.FromSeconds(15)), $"agent on {node} survived SIGKILL");
    }

    /// <summary>The namespace identities (nsfs inode numbers) behind the pods' netns files: equal means the same pods.</summary>
    private static async Task<string> NetnsInodesAsync(InPodCluster cluster, params PodSpec[] pods)
    {
        var r = await Command.CheckAsync("stat", ["-L", "-c", "%i", .. pods.Select(p => cluster.PodNetns(p.Name))], InPodCluster.StepTimeout);
        return r.Stdout.Trim();
    }
}
