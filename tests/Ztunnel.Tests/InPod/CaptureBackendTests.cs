using Ambient.Ztunnel.Tests.InPod.Support;
using Xunit.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// The non-default capture settings, each on a one-node cluster of its own: the nftables backend
/// (<c>inpod: {firewall: nftables}</c>) and REDIRECT instead of TPROXY for inbound
/// (<c>inpod: {inboundCapture: redirect}</c>, what Istio uses since 1.24).
/// </summary>
public sealed class CaptureBackendTests(ITestOutputHelper output)
{
    private const int AppPort = 8080;

    private static readonly PodSpec Client = new("node-a", "client", "shop", "10.10.1.10");
    private static readonly PodSpec Server = new("node-a", "server", "shop", "10.10.1.11");
    private static readonly PodSpec Legacy = new("node-a", "legacy", "legacy", "10.10.1.12", InConfig: false);

    [RootFact]
    public async Task Nftables_RulesInOwnTable_AndTrafficFlows()
    {
        await using var cluster = await InPodCluster.StartAsync(new ClusterSpec { Nodes = ["node-a"], Pods = [Client, Server], Firewall = "nftables" }, output.WriteLine);
        try
        {
            var rules = await RuleSnapshot.TakeAsync(cluster, Client.Name);
            output.WriteLine(rules.ToString());
            Assert.DoesNotContain(rules.IptablesRules.Values.SelectMany(r => r), r => r.Contains("AMBIENT", StringComparison.Ordinal));
            var nft = rules.Nftables;
            string outputNat = Chain(nft, "output_nat");
            string prerouting = Chain(nft, "prerouting_mangle");
            Assert.Contains("redirect to :15001", outputNat, StringComparison.Ordinal);
            Assert.Matches(@"mark & 0x0*fff != 0x0*539 redirect to :15001", outputNat);
            Assert.Contains("169.254.7.127", outputNat, StringComparison.Ordinal);
            Assert.Matches(@"tproxy (ip )?to :15006", prerouting);
            Assert.Contains("tcp dport 15008 accept", prerouting, StringComparison.Ordinal);
            Assert.Contains("169.254.7.127", prerouting, StringComparison.Ordinal);
            // The exclusions come before the capture rule.
            Assert.True(prerouting.IndexOf("tcp dport 15008", StringComparison.Ordinal) < prerouting.IndexOf("tproxy", StringComparison.Ordinal), prerouting);
            Assert.Single(rules.IpRules, r => r.Contains("fwmark 0x111/0xfff lookup 100", StringComparison.Ordinal));
            Assert.Superset(new HashSet<int> { 15001, 15006, 15008 }, (await cluster.ListeningPortsAsync(Client.Name)).ToHashSet());

            await AssertMeshCallAsync(cluster);
        }
        catch
        {
            output.WriteLine(cluster.Describe());
            throw;
        }
    }

    [RootFact]
    public async Task RedirectInbound_NatRedirectTo15006_AndTrafficFlows()
    {
        await using var cluster = await InPodCluster.StartAsync(new ClusterSpec { Nodes = ["node-a"], Pods = [Client, Server, Legacy], InboundCapture = "redirect" }, output.WriteLine);
        try
        {
            var rules = await RuleSnapshot.TakeAsync(cluster, Server.Name);
            output.WriteLine(rules.ToString());
            var natPrert = rules.Rules("nat").Where(r => r.StartsWith("-A AMBIENT_PRERT ", StringComparison.Ordinal)).ToList();
            int redirect = natPrert.FindIndex(r => r.EndsWith("-j REDIRECT --to-ports 15006", StringComparison.Ordinal));
            Assert.True(redirect >= 0, $"no REDIRECT to 15006 in nat AMBIENT_PRERT:\n{rules}");
            Assert.Contains("-m mark ! --mark 0x539/0xfff", natPrert[redirect], StringComparison.Ordinal);
            Assert.InRange(natPrert.FindIndex(r => r.Contains("--dport 15008 -j ACCEPT", StringComparison.Ordinal)), 0, redirect - 1);
            Assert.InRange(natPrert.FindIndex(r => r.Contains("-s 169.254.7.127/32", StringComparison.Ordinal)), 0, redirect - 1);
            Assert.DoesNotContain(rules.Rules("mangle"), r => r.Contains("TPROXY", StringComparison.Ordinal));
            // No TPROXY, so no policy routing either.
            Assert.DoesNotContain(rules.IpRules, r => r.Contains("0x111", StringComparison.Ordinal));
            Assert.Contains(rules.Rules("nat"), r => r.EndsWith("-j REDIRECT --to-ports 15001", StringComparison.Ordinal));

            await AssertMeshCallAsync(cluster);

            // Plaintext from outside the mesh reaches the app through the inbound listener, which recovers the
            // original destination (SO_ORIGINAL_DST) since REDIRECT rewrote it to 15006.
            var agent = cluster.Agent("node-a");
            int logFrom = agent.Stdout.Count;
            var r = await cluster.CurlAsync(Legacy.Name, $"http://{Server.Ip}:{AppPort}/from-legacy");
            Assert.True(r.Ok, r.ToString());
            Assert.Equal("hello from server", r.Stdout.Trim());
            // Plaintext carries no peer identity; the destination is known by its workload.
            var line = await AccessLog.WaitAsync(agent, logFrom, ("direction", "inbound"), ("dst.addr", $"{Server.Ip}:{AppPort}"),
                ("dst.workload", Server.Name));
            Assert.Contains($"src.addr={Legacy.Ip}:", line, StringComparison.Ordinal);
            output.WriteLine(line);
        }
        catch
        {
            output.WriteLine(cluster.Describe());
            throw;
        }
    }

    /// <summary>client -> server through both pods' listeners, with the identities of both ends in the access log.</summary>
    private async Task AssertMeshCallAsync(InPodCluster cluster)
    {
        var app = await cluster.StartServerAsync(Server.Name, AppPort);
        var agent = cluster.Agent("node-a");
        int logFrom = agent.Stdout.Count;
        var r = await cluster.CurlAsync(Client.Name, $"http://{Server.Ip}:{AppPort}/mesh");
        Assert.True(r.Ok, r.ToString());
        Assert.Equal("hello from server", r.Stdout.Trim());
        await app.WaitForLineAsync(l => l.StartsWith("REQUEST GET /mesh", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        var outbound = await AccessLog.WaitAsync(agent, logFrom, ("direction", "outbound"),
            ("src.identity", InPodCluster.Identity(Client)), ("dst.identity", InPodCluster.Identity(Server)), ("dst.hbone_addr", $"{Server.Ip}:15008"));
        var inbound = await AccessLog.WaitAsync(agent, logFrom, ("direction", "inbound"),
            ("src.identity", InPodCluster.Identity(Client)), ("dst.identity", InPodCluster.Identity(Server)));
        output.WriteLine($"{outbound}\n{inbound}");
    }

    /// <summary>The body of one chain in `nft list` output.</summary>
    private static string Chain(string nft, string name)
    {
        int start = nft.IndexOf($"chain {name} {{", StringComparison.Ordinal);
        Assert.True(start >= 0, $"no chain {name} in table ip ambient:\n{nft}");
        int end = nft.IndexOf('}', start);
        return nft[start..end];
    }
}
