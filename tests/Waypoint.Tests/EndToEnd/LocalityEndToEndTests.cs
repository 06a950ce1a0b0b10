using Ambient.Waypoint.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// DestinationRule <c>localityLbSetting</c> through client -> ztunnel -> waypoint -> ztunnel -> pods, with the
/// localities taken from the Nodes' topology labels: <c>distribute</c> sends a locality's traffic where its weights
/// say, and <c>failoverPriority</c> with a custom label prefers the pods that match it.
/// </summary>
public sealed class LocalityEndToEndTests
{
    // The waypoint and echo-v1 run in r1/z1, echo-v2 in r2/z1.
    private const string Nodes = """
        apiVersion: v1
        kind: Node
        metadata: {name: node-w, labels: {topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: z1}}
        ---
        apiVersion: v1
        kind: Node
        metadata: {name: node-b, labels: {topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: z1}}
        ---
        apiVersion: v1
        kind: Node
        metadata: {name: node-c, labels: {topology.kubernetes.io/region: r2, topology.kubernetes.io/zone: z1}}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: echo, namespace: shop}
        spec:
          host: echo.shop.svc.cluster.local
          trafficPolicy:

        """;

    private static async Task<(int V1, int V2)> CountAsync(WaypointMesh mesh, int n)
    {
        int v1 = 0, v2 = 0;
        mesh.V1.Script = _ =>
        {
            Interlocked.Increment(ref v1);
            return Task.FromResult(false);
        };
        mesh.V2.Script = _ =>
        {
            Interlocked.Increment(ref v2);
            return Task.FromResult(false);
        };
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(200, (await mesh.CurlAsync($"/where/{i}")).Status);
        }
        return (v1, v2);
    }

    [Fact]
    public async Task DistributeAndFailoverPrioritySteerRequestsBetweenLocalities()
    {
        // Our own zone's weight all goes to the other region: every request crosses over.
        await using var mesh = await WaypointMesh.StartAsync(Nodes + "    loadBalancer: {localityLbSetting: {distribute: [{from: r1/z1/*, to: {r2/*: 100}}]}}\n");
        Assert.Equal((0, 12), await CountAsync(mesh, 12));

        // Weights that do not add up to 100 are refused; the last good rule stays.
        await File.WriteAllTextAsync(Path.Combine(mesh.ManifestDir, "extra.yaml"),
            Nodes + "    loadBalancer: {localityLbSetting: {distribute: [{from: r1/z1/*, to: {r1/z1/*: 60, r2/*: 60}}]}}\n");
        // The manifests source reports the refusal in /config_dump (its lastError; the log has each error with its file,
        // line and field, as the parser tests check).
        await TestWait.UntilAsync(async () => (await mesh.GetAdminAsync(mesh.WaypointEndpoints.Admin, "/config_dump")).Contains("keeping the last good state", StringComparison.Ordinal),
            "the broken rule is refused");
        Assert.Equal((0, 6), await CountAsync(mesh, 6));

        await mesh.ApplyAsync(Nodes + "    loadBalancer: {localityLbSetting: {distribute: [{from: r1/*, to: {r1/z1: 100}}]}}\n");
        Assert.Equal((12, 0), await CountAsync(mesh, 12));

        // failoverPriority (with outlier detection, as Istio requires): pods labelled version=v2 first.
        await mesh.ApplyAsync(Nodes + "    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}\n"
            + "    loadBalancer: {localityLbSetting: {failoverPriority: [\"version=v2\"]}}\n");
        Assert.Equal((0, 12), await CountAsync(mesh, 12));

        // Without any of it, both pods get requests.
        await mesh.ApplyAsync(Nodes + "    loadBalancer: {simple: ROUND_ROBIN}\n");
        var (v1, v2) = await CountAsync(mesh, 40);
        Assert.True(v1 > 0 && v2 > 0, $"v1 {v1}, v2 {v2}");
    }
}
