using Ambient.Ztunnel.Tests.InPod.Support;
using Xunit.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>One node, no pods at first: each test starts its own pod (namespace <c>batch</c> is enrolled) through the CNI chain.</summary>
public sealed class CaptureRulesFixture : ClusterFixture
{
    internal override ClusterSpec Spec { get; } = new()
    {
        Nodes = ["node-a"],
        Pods = [],
        EnrolledNamespaces = ["batch"],
    };
}

/// <summary>
/// What ADD and DEL leave inside a pod's network namespace with the default backend (iptables, TPROXY inbound): the
/// rules REFERENCE.md lists, in an order that lets the exclusions win, the agent's three listeners, and after DEL
/// nothing at all.
/// </summary>
public sealed class CaptureRulesTests(CaptureRulesFixture fixture, ITestOutputHelper output) : IClassFixture<CaptureRulesFixture>
{
    private static readonly int[] AgentPorts = [15001, 15006, 15008];

    [RootFact]
    public async Task Add_InstallsRulesAndListeners_Del_RemovesEveryRuleAndListener()
    {
        var cluster = fixture.Cluster;
        var pod = new PodSpec("node-a", "probe-del", "batch", "10.10.1.20", InConfig: false);
        await cluster.AddPodAsync(pod);
        try
        {
            var rules = await RuleSnapshot.TakeAsync(cluster, pod.Name);
            output.WriteLine($"after ADD:\n{rules}");
            AssertIptablesCapture(rules);
            Assert.Superset(AgentPorts.ToHashSet(), (await cluster.ListeningPortsAsync(pod.Name)).ToHashSet());

            // DEL through the whole chain, keeping the namespace so we can look inside afterwards.
            var del = await cluster.CniChainAsync("DEL", pod);
            Assert.True(del.Ok, del.ToString());

            var after = await RuleSnapshot.TakeAsync(cluster, pod.Name);
            output.WriteLine($"after DEL:\n{after}");
            Assert.False(after.MentionsAmbient, $"AMBIENT rules left after DEL:\n{after}");
            Assert.DoesNotContain(after.IpRules, r => r.Contains("0x111", StringComparison.Ordinal));
            Assert.Empty(after.Table100);
            var ports = await cluster.ListeningPortsAsync(pod.Name);
            Assert.Empty(ports.Intersect(AgentPorts));
        }
        finally
        {
            // The chain's DEL keeps the namespace (a runtime removes it afterwards); so does this test.
            await Command.RunAsync("ip", ["netns", "del", $"{cluster.Prefix}-pod-{pod.Name}"], InPodCluster.StepTimeout);
        }
    }

    [RootFact]
    public async Task RepeatedAdd_DoesNotDuplicateRules()
    {
        var cluster = fixture.Cluster;
        var pod = new PodSpec("node-a", "probe-twice", "batch", "10.10.1.21", InConfig: false);
        await cluster.AddPodAsync(pod);
        var before = await RuleSnapshot.TakeAsync(cluster, pod.Name);
        AssertIptablesCapture(before);

        // A runtime that retries ADD calls the plugin again for the same attachment.
        var again = await cluster.RepeatAmbientCniAddAsync(pod);
        Assert.True(again.Ok, again.ToString());

        var after = await RuleSnapshot.TakeAsync(cluster, pod.Name);
        output.WriteLine($"{before.AllLines.Count()} rule lines before the second ADD, {after.AllLines.Count()} after");
        Assert.Equal(before.AllLines.ToList(), after.AllLines.ToList());
        Assert.Single(after.IpRules, r => r.Contains("fwmark 0x111/0xfff lookup 100", StringComparison.Ordinal));
        Assert.Superset(AgentPorts.ToHashSet(), (await cluster.ListeningPortsAsync(pod.Name)).ToHashSet());
    }

    /// <summary>The iptables flavour of Istio's in-pod rules (REFERENCE.md, "In-pod redirection").</summary>
    internal static void AssertIptablesCapture(RuleSnapshot rules)
    {
        var nat = rules.Rules("nat");
        var mangle = rules.Rules("mangle");

        // Our chains, reached from the built-in ones exactly once.
        Assert.Single(nat, "-A OUTPUT -j AMBIENT_OUTPUT");
        Assert.Single(nat, "-A PREROUTING -j AMBIENT_PRERT");
        Assert.Single(mangle, "-A PREROUTING -j AMBIENT_PRERT");
        Assert.Single(mangle, "-A OUTPUT -j AMBIENT_OUTPUT");

        // Outbound: TCP not to loopback and not from the agent (mark 0x539) goes to 15001, after the exclusions.
        var natOut = nat.Where(r => r.StartsWith("-A AMBIENT_OUTPUT ", StringComparison.Ordinal)).ToList();
        int redirect = natOut.FindIndex(r => r.EndsWith("-j REDIRECT --to-ports 15001", StringComparison.Ordinal));
        Assert.True(redirect >= 0, $"no REDIRECT to 15001 in nat AMBIENT_OUTPUT:\n{string.Join('\n', natOut)}");
        Assert.Contains("! -d 127.0.0.1/32", natOut[redirect], StringComparison.Ordinal);
        Assert.Contains("-m mark ! --mark 0x539/0xfff", natOut[redirect], StringComparison.Ordinal);
        int probeOut = natOut.FindIndex(r => r.Contains("-d 169.254.7.127/32", StringComparison.Ordinal) && r.EndsWith("-j ACCEPT", StringComparison.Ordinal));
        Assert.InRange(probeOut, 0, redirect - 1);

        // Inbound: mangle TPROXY to 15006 with the capture mark, after letting 15008, the kubelet probes and marked packets through.
        var prert = mangle.Where(r => r.StartsWith("-A AMBIENT_PRERT ", StringComparison.Ordinal)).ToList();
        int tproxy = prert.FindIndex(r => r.Contains("-j TPROXY --on-port 15006", StringComparison.Ordinal));
        Assert.True(tproxy >= 0, $"no TPROXY to 15006 in mangle AMBIENT_PRERT:\n{string.Join('\n', prert)}");
        Assert.Contains("--tproxy-mark 0x111/0xfff", prert[tproxy], StringComparison.Ordinal);
        Assert.Contains("-m mark ! --mark 0x539/0xfff", prert[tproxy], StringComparison.Ordinal);
        Assert.InRange(prert.FindIndex(r => r.Contains("--dport 15008 -j ACCEPT", StringComparison.Ordinal)), 0, tproxy - 1);
        Assert.InRange(prert.FindIndex(r => r.Contains("-s 169.254.7.127/32", StringComparison.Ordinal) && r.EndsWith("-j ACCEPT", StringComparison.Ordinal)), 0, tproxy - 1);
        Assert.Contains(prert, r => r.Contains("--mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff", StringComparison.Ordinal));

        // TPROXY'd packets are routed to the local stack.
        Assert.Single(rules.IpRules, r => r.Contains("fwmark 0x111/0xfff lookup 100", StringComparison.Ordinal));
        Assert.Contains(rules.Table100, r => r.StartsWith("local default dev lo", StringComparison.Ordinal));
    }
}
