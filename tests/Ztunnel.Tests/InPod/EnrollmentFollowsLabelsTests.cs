using Ambient.Ztunnel.Tests.InPod.Support;
using Xunit.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// Kubernetes mode (issue 8): in-pod enrollment follows the <c>istio.io/dataplane-mode</c> labels live. The agent learns
/// the pods from manifests (the same translation as the API source); the CNI plugin reports every pod at start-up, and
/// the agent keeps the network namespace of the ones it did not enroll. Labelling the namespace captures its running
/// pod; labelling the pod <c>none</c> releases it; the pod's namespace and its app never restart.
/// </summary>
public sealed class EnrollmentFollowsLabelsTests(ITestOutputHelper output)
{
    private const int AppPort = 8080;

    private static string Manifests(string lateNamespaceLabels, string serverPodLabels) => """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          labels: {istio.io/dataplane-mode: ambient}
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: late
          labels: {NAMESPACE_LABELS}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: client, namespace: shop, uid: uid-client, labels: {app: client}}
        spec: {nodeName: node-a, serviceAccountName: client, containers: [{name: c, image: c}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: server, namespace: late, uid: uid-server, labels: {app: serverPOD_LABELS}}
        spec: {nodeName: node-a, serviceAccountName: server, containers: [{name: c, image: c}]}
        """.Replace("NAMESPACE_LABELS", lateNamespaceLabels, StringComparison.Ordinal).Replace("POD_LABELS", serverPodLabels, StringComparison.Ordinal);

    [RootFact]
    public async Task NamespaceLabel_CapturesARunningPod_AndPodOptOut_ReleasesIt_WithoutRestartingIt()
    {
        var client = new PodSpec("node-a", "client", "shop", "10.10.1.10", InConfig: false);
        var server = new PodSpec("node-a", "server", "late", "10.10.1.11", InConfig: false);
        var spec = new ClusterSpec
        {
            Nodes = ["node-a"],
            Pods = [client, server],
            Manifests = Manifests("", ""),
        };
        await using var cluster = await InPodCluster.StartAsync(spec, output.WriteLine);
        try
        {
            var app = await cluster.StartServerAsync(server.Name, AppPort);
            string url = $"http://{server.Ip}:{AppPort}/";
            string netnsBefore = await NetnsInodeAsync(cluster, server);

            // Not enrolled: no agent listeners and no capture rules in the server pod; traffic reaches it in plaintext.
            Assert.DoesNotContain(15008, await cluster.ListeningPortsAsync(server.Name));
            Assert.False((await RuleSnapshot.TakeAsync(cluster, server.Name)).MentionsAmbient);
            var before = await cluster.CurlAsync(client.Name, url + "before");
            Assert.True(before.Ok, before.ToString());

            // The namespace gets the ambient label: the running pod is captured, not restarted.
            await cluster.WriteManifestsAsync(Manifests("istio.io/dataplane-mode: ambient", ""));
            await InPodCluster.EventuallyAsync(async () => (await cluster.ListeningPortsAsync(server.Name)).Contains(15008), "server captured after its namespace was labelled");
            Assert.Superset(new HashSet<int> { 15001, 15006, 15008 }, (await cluster.ListeningPortsAsync(server.Name)).ToHashSet());
            Assert.True((await RuleSnapshot.TakeAsync(cluster, server.Name)).MentionsAmbient);
            Assert.Contains(cluster.Agent("node-a").Stderr, l => l.Contains("captured pod late/server", StringComparison.Ordinal));
            var captured = await cluster.CurlAsync(client.Name, url + "captured");
            Assert.True(captured.Ok, captured.ToString());
            Assert.Equal("hello from server", captured.Stdout.Trim());
            // The connection arrived over HBONE: node-a's agent served it inbound on 15008 with the client's identity.
            double hbone = await cluster.MetricAsync("node-a", "istio_tcp_connections_opened_total",
                ("reporter", "destination"), ("destination_workload_namespace", "late"), ("connection_security_policy", "mutual_tls"),
                ("source_principal", "spiffe://cluster.local/ns/shop/sa/client"));
            Assert.True(hbone >= 1, $"no mTLS connection from client to server was counted ({hbone})");

            // The pod opts out: released, its rules and listeners go; it keeps running and serving.
            await cluster.WriteManifestsAsync(Manifests("istio.io/dataplane-mode: ambient", ", istio.io/dataplane-mode: none"));
            // The agent logs the release once the pod's listeners are closed and its rules removed.
            await InPodCluster.EventuallyAsync(
                () => Task.FromResult(cluster.Agent("node-a").Stderr.Any(l => l.Contains("released pod late/server", StringComparison.Ordinal))),
                "server released after it opted out");
            Assert.DoesNotContain(15008, await cluster.ListeningPortsAsync(server.Name));
            Assert.False((await RuleSnapshot.TakeAsync(cluster, server.Name)).MentionsAmbient);
            var released = await cluster.CurlAsync(client.Name, url + "released");
            Assert.True(released.Ok, released.ToString());

            // The label comes back: captured again from the namespace the agent still remembers.
            await cluster.WriteManifestsAsync(Manifests("istio.io/dataplane-mode: ambient", ""));
            await InPodCluster.EventuallyAsync(async () => (await cluster.ListeningPortsAsync(server.Name)).Contains(15008), "server captured again");

            Assert.False(app.HasExited, "the server app stopped");
            Assert.Equal(netnsBefore, await NetnsInodeAsync(cluster, server));
        }
        catch
        {
            output.WriteLine(cluster.Describe());
            throw;
        }
    }

    private static async Task<string> NetnsInodeAsync(InPodCluster cluster, PodSpec pod)
    {
        var r = await Command.CheckAsync("stat", ["-L", "-c", "%i", cluster.PodNetns(pod.Name)], InPodCluster.StepTimeout);
        return r.Stdout.Trim();
    }
}
