using Ambient.Ztunnel.Tests.InPod.Support;
using Xunit.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// Two nodes: client, neighbor and a pod outside the mesh (namespace legacy) on node-a; server on node-b. The apps
/// are plain TCP servers that know nothing of the mesh.
/// </summary>
public sealed class TwoNodeClusterFixture : ClusterFixture
{
    public const int AppPort = 8080;

    internal override ClusterSpec Spec { get; } = new()
    {
        Nodes = ["node-a", "node-b"],
        Pods =
        [
            new PodSpec("node-b", "server", "shop", "10.10.2.10"),
            new PodSpec("node-a", "client", "shop", "10.10.1.10"),
            new PodSpec("node-a", "neighbor", "shop", "10.10.1.11"),
            new PodSpec("node-a", "legacy", "legacy", "10.10.1.12", InConfig: false),
        ],
    };

    internal Daemon Server { get; private set; } = null!;

    internal Daemon Neighbor { get; private set; } = null!;

    internal override async Task StartAppsAsync(InPodCluster cluster)
    {
        Server = await cluster.StartServerAsync("server", AppPort);
        Neighbor = await cluster.StartServerAsync("neighbor", AppPort);
    }
}

/// <summary>
/// Traffic between unmodified apps goes through the agents: transparent capture on the client side, HBONE with both
/// SPIFFE identities between them (also on one node), counted in the metrics, and on the wire between the nodes
/// nothing but port 15008 and ciphertext. A pod outside the mesh is left alone.
/// </summary>
public sealed class MeshTrafficTests(TwoNodeClusterFixture fixture, ITestOutputHelper output) : IClassFixture<TwoNodeClusterFixture>
{
    private InPodCluster Cluster => fixture.Cluster;

    [RootFact]
    public async Task SameNode_TrafficGoesThroughTheAgent_WithBothIdentities()
    {
        var client = Cluster.Pod("client");
        var neighbor = Cluster.Pod("neighbor");
        var agent = Cluster.Agent("node-a");
        int logFrom = agent.Stdout.Count;
        var opened = Labels(client, neighbor);
        double before = await Cluster.MetricAsync("node-a", "istio_tcp_connections_opened_total", opened);

        var r = await Cluster.CurlAsync("client", $"http://{neighbor.Ip}:{TwoNodeClusterFixture.AppPort}/same-node");
        Assert.True(r.Ok, $"{r}\n{Cluster.Describe()}");
        Assert.Equal("hello from neighbor", r.Stdout.Trim());

        var outbound = await AccessLog.WaitAsync(agent, logFrom, ("direction", "outbound"),
            ("src.identity", InPodCluster.Identity(client)), ("dst.identity", InPodCluster.Identity(neighbor)), ("dst.hbone_addr", $"{neighbor.Ip}:15008"));
        var inbound = await AccessLog.WaitAsync(agent, logFrom, ("direction", "inbound"),
            ("src.identity", InPodCluster.Identity(client)), ("dst.identity", InPodCluster.Identity(neighbor)));
        output.WriteLine($"node-a outbound: {outbound}\nnode-a inbound: {inbound}");

        double after = await Cluster.MetricAsync("node-a", "istio_tcp_connections_opened_total", opened);
        Assert.True(after >= before + 1, $"istio_tcp_connections_opened_total{{reporter=destination, client -> neighbor}} went from {before} to {after}");
    }

    [RootFact]
    public async Task CrossNode_OnlyHboneOnTheWire_NoPlaintext_IdentitiesLoggedAndCounted()
    {
        var client = Cluster.Pod("client");
        var server = Cluster.Pod("server");
        var agentA = Cluster.Agent("node-a");
        var agentB = Cluster.Agent("node-b");
        int logA = agentA.Stdout.Count, logB = agentB.Stdout.Count, appLog = fixture.Server.Stdout.Count;
        var opened = Labels(client, server);
        double beforeB = await Cluster.MetricAsync("node-b", "istio_tcp_connections_opened_total", opened);
        double beforeA = await Cluster.MetricAsync("node-a", "istio_tcp_connections_opened_total", Labels(client, server, "source"));
        string canary = $"PLAINTEXT-CANARY-{Guid.NewGuid():N}";

        CapturedTraffic wire;
        await using (var capture = await Cluster.CaptureFabricAsync())
        {
            var r = await Cluster.CurlAsync("client", $"http://{server.Ip}:{TwoNodeClusterFixture.AppPort}/{canary}", canary);
            Assert.True(r.Ok, $"{r}\n{Cluster.Describe()}");
            Assert.Equal("hello from server", r.Stdout.Trim());
            wire = await capture.StopAsync();
        }
        output.WriteLine(wire.Summary());

        // The app got the request, canary and all: it crossed the fabric, just not readable there.
        await fixture.Server.WaitForLineAsync(l => l.StartsWith("REQUEST ", StringComparison.Ordinal) && l.Contains(canary, StringComparison.Ordinal), TimeSpan.FromSeconds(10), skip: appLog);
        Assert.NotEmpty(wire.Packets);
        Assert.Empty(wire.NotOnPort(15008));
        Assert.False(wire.Contains(canary), "the canary crossed the fabric in plaintext");

        var outbound = await AccessLog.WaitAsync(agentA, logA, ("direction", "outbound"),
            ("src.identity", InPodCluster.Identity(client)), ("dst.identity", InPodCluster.Identity(server)), ("dst.hbone_addr", $"{server.Ip}:15008"));
        var inbound = await AccessLog.WaitAsync(agentB, logB, ("direction", "inbound"),
            ("src.identity", InPodCluster.Identity(client)), ("dst.identity", InPodCluster.Identity(server)), ("dst.addr", $"{server.Ip}:{TwoNodeClusterFixture.AppPort}"));
        output.WriteLine($"node-a: {outbound}\nnode-b: {inbound}");

        double afterB = await Cluster.MetricAsync("node-b", "istio_tcp_connections_opened_total", opened);
        double afterA = await Cluster.MetricAsync("node-a", "istio_tcp_connections_opened_total", Labels(client, server, "source"));
        output.WriteLine($"connections opened client -> server: node-b (destination) {beforeB} -> {afterB}, node-a (source) {beforeA} -> {afterA}");
        Assert.True(afterB >= beforeB + 1, $"node-b did not count the connection ({beforeB} -> {afterB})");
        Assert.True(afterA >= beforeA + 1, $"node-a did not count the connection ({beforeA} -> {afterA})");
    }

    [RootFact]
    public async Task NotEnrolledPod_IsUntouched_AndItsTrafficIsPlain()
    {
        var legacy = Cluster.Pod("legacy");
        var server = Cluster.Pod("server");
        var agentA = Cluster.Agent("node-a");
        await agentA.WaitForLineAsync(l => l.Contains("pod legacy/legacy is not enrolled", StringComparison.Ordinal), TimeSpan.FromSeconds(5), stderr: true);

        var rules = await RuleSnapshot.TakeAsync(Cluster, "legacy");
        Assert.False(rules.MentionsAmbient, $"capture rules in a pod outside the mesh:\n{rules}");
        Assert.DoesNotContain(rules.IpRules, r => r.Contains("0x111", StringComparison.Ordinal));
        Assert.Empty((await Cluster.ListeningPortsAsync("legacy")).Intersect([15001, 15006, 15008]));

        int logA = agentA.Stdout.Count;
        string canary = $"PLAINTEXT-CANARY-{Guid.NewGuid():N}";
        CapturedTraffic wire;
        await using (var capture = await Cluster.CaptureFabricAsync())
        {
            var r = await Cluster.CurlAsync("legacy", $"http://{server.Ip}:{TwoNodeClusterFixture.AppPort}/{canary}", canary);
            Assert.True(r.Ok, $"{r}\n{Cluster.Describe()}");
            Assert.Equal("hello from server", r.Stdout.Trim());
            wire = await capture.StopAsync();
        }
        output.WriteLine(wire.Summary());

        // Plain TCP to the app port, readable on the wire: nothing on the legacy side touched it.
        Assert.True(wire.Contains(canary), "the legacy pod's request was not plaintext on the wire");
        Assert.Contains(wire.Packets, p => p.Contains($"{server.Ip}.{TwoNodeClusterFixture.AppPort}", StringComparison.Ordinal));
        Assert.DoesNotContain(wire.Packets, p => p.Contains(".15008", StringComparison.Ordinal));
        Assert.DoesNotContain(agentA.Stdout.Skip(logA), l => l.Contains($"src.addr={legacy.Ip}:", StringComparison.Ordinal));
    }

    private static (string, string)[] Labels(PodSpec source, PodSpec destination, string reporter = "destination") =>
        [("reporter", reporter), ("source_workload", source.Name), ("destination_workload", destination.Name)];
}
