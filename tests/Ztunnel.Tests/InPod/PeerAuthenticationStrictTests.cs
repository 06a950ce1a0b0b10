using Ambient.Ztunnel.Tests.InPod.Support;
using Xunit.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// PeerAuthentication <c>STRICT</c> (issue 8): a captured pod under STRICT refuses plaintext on its inbound capture (15006)
/// with a logged reason and a counted refusal, still accepts HBONE from the mesh, and accepts plaintext again under
/// PERMISSIVE; an edit of the policy applies to the next connection.
/// </summary>
public sealed class PeerAuthenticationStrictTests(ITestOutputHelper output)
{
    private const int AppPort = 8080;

    private static string Policy(string mode) => $"""
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {"{"}name: shop-mtls, namespace: shop{"}"}
        spec:
          mtls: {"{"}mode: {mode}{"}"}
        """;

    [RootFact]
    public async Task Strict_RefusesPlaintext_Permissive_AcceptsIt_AndLiveEditsApply()
    {
        var client = new PodSpec("node-a", "client", "shop", "10.10.1.10");
        var server = new PodSpec("node-a", "server", "shop", "10.10.1.11");
        var legacy = new PodSpec("node-a", "legacy", "legacy", "10.10.1.12", InConfig: false);
        var spec = new ClusterSpec { Nodes = ["node-a"], Pods = [client, server, legacy], Manifests = Policy("STRICT") };
        await using var cluster = await InPodCluster.StartAsync(spec, output.WriteLine);
        try
        {
            var app = await cluster.StartServerAsync(server.Name, AppPort);
            string url = $"http://{server.Ip}:{AppPort}/";
            var agent = cluster.Agent("node-a");

            // STRICT: the mesh client gets through (HBONE), the plaintext one is refused before the app sees it.
            var mesh = await cluster.CurlAsync(client.Name, url + "mesh");
            Assert.True(mesh.Ok, mesh.ToString());
            int accepted = app.Stdout.Count;
            var plain = await cluster.CurlAsync(legacy.Name, url + "plain-strict");
            Assert.False(plain.Ok, $"plaintext reached a STRICT workload: {plain}");
            Assert.DoesNotContain(app.Stdout.Skip(accepted), l => l.StartsWith("ACCEPT", StringComparison.Ordinal));
            await InPodCluster.EventuallyAsync(() => Task.FromResult(agent.Stderr.Any(l => l.Contains("STRICT mTLS (PeerAuthentication/shop/shop-mtls)", StringComparison.Ordinal))),
                "the refusal logged with the deciding policy");
            Assert.True(await cluster.MetricAsync("node-a", "ambient_connections_refused_total", ("listener", "inbound"), ("reason", "mtls_strict")) >= 1);

            // PERMISSIVE (a live edit of the manifest): plaintext is accepted again.
            await cluster.WriteManifestsAsync(Policy("PERMISSIVE"));
            await InPodCluster.EventuallyAsync(async () => (await cluster.CurlAsync(legacy.Name, url + "plain-permissive")).Ok, "plaintext accepted under PERMISSIVE");
            Assert.Contains(app.Stdout, l => l.Contains("/plain-permissive", StringComparison.Ordinal));

            // And STRICT again: refused again, the mesh path unaffected.
            await cluster.WriteManifestsAsync(Policy("STRICT"));
            await InPodCluster.EventuallyAsync(async () => !(await cluster.CurlAsync(legacy.Name, url + "plain-strict-again")).Ok, "plaintext refused again under STRICT");
            var meshAgain = await cluster.CurlAsync(client.Name, url + "mesh-again");
            Assert.True(meshAgain.Ok, meshAgain.ToString());
        }
        catch
        {
            output.WriteLine(cluster.Describe());
            throw;
        }
    }
}
