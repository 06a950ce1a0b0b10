using System.Net;
using Ambient.Mesh.Governance;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Waypoint.Routing;
using Ambient.Waypoint.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Ambient.Waypoint.Tests.Governance;

/// <summary>
/// DestinationRule <c>localityLbSetting</c> in the waypoint's endpoint choice, with Istio's and Envoy's semantics:
/// same zone first, then same region, then the <c>failover</c> region; a locality whose endpoints are ejected by
/// outlier detection hands its traffic on; nothing of this without outlier detection or with <c>enabled: false</c>.
/// </summary>
public sealed class LocalityFailoverTests
{
    // The waypoint's pod is in r1/z1. Service loc: a (r1/z1), b (r1/z2), c (r2/z1), d (r3/z1).
    private const string Manifests = """
        apiVersion: v1
        kind: Pod
        metadata: {name: waypoint-0, namespace: shop, labels: {gateway.networking.k8s.io/gateway-name: waypoint, istio-locality: r1.z1}}
        spec: {nodeName: n, serviceAccountName: waypoint, containers: [{name: c, image: i}]}
        status: {podIP: 10.0.2.1, podIPs: [{ip: 10.0.2.1}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: loc, namespace: shop, labels: {istio.io/use-waypoint: waypoint}}
        spec: {clusterIP: 10.0.0.9, selector: {app: loc}, ports: [{name: http, port: 80, targetPort: 8080}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: a, namespace: shop, labels: {app: loc, istio-locality: r1.z1}}
        spec: {nodeName: n, serviceAccountName: loc, containers: [{name: c, image: i}]}
        status: {podIP: 10.0.9.1, podIPs: [{ip: 10.0.9.1}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: b, namespace: shop, labels: {app: loc, istio-locality: r1.z2}}
        spec: {nodeName: n, serviceAccountName: loc, containers: [{name: c, image: i}]}
        status: {podIP: 10.0.9.2, podIPs: [{ip: 10.0.9.2}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: c, namespace: shop, labels: {app: loc, istio-locality: r2.z1}}
        spec: {nodeName: n, serviceAccountName: loc, containers: [{name: c, image: i}]}
        status: {podIP: 10.0.9.3, podIPs: [{ip: 10.0.9.3}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: d, namespace: shop, labels: {app: loc, istio-locality: r3.z1}}
        spec: {nodeName: n, serviceAccountName: loc, containers: [{name: c, image: i}]}
        status: {podIP: 10.0.9.4, podIPs: [{ip: 10.0.9.4}]}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: loc, namespace: shop}
        spec:
          host: loc.shop.svc.cluster.local
          trafficPolicy:

        """;

    private const string Outliers = "    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}\n";

    [Theory]
    // trafficPolicy lines, pods ejected, the pods requests may go to
    [InlineData(Outliers, "", "a")]
    [InlineData(Outliers, "a", "b")]                    // the zone is gone: same region, other zone
    [InlineData(Outliers, "a b", "c d")]                // the region is gone, no failover given: the other regions alike
    [InlineData(Outliers + "    loadBalancer: {localityLbSetting: {failover: [{from: r1, to: r3}]}}\n", "a b", "d")]
    [InlineData(Outliers + "    loadBalancer: {localityLbSetting: {failover: [{from: r1, to: r3}]}}\n", "a b d", "c")]
    [InlineData(Outliers + "    loadBalancer: {localityLbSetting: {enabled: false}}\n", "", "a b c d")]
    [InlineData("    connectionPool: {tcp: {maxConnections: 100}}\n", "", "a b c d")] // no outlier detection: no locality preference
    public void RequestsStayLocalUntilTheLocalityIsEjected(string trafficPolicy, string ejected, string expected)
    {
        var snapshot = Snapshots.Build(Manifests + trafficPolicy);
        var service = snapshot.FindServiceByVip(IPAddress.Parse("10.0.0.9"))!;
        var backend = new Backend(service, 80, null, null);
        var dr = snapshot.ObjectsOf<DestinationRule>().Single(d => d.Name == "loc");
        OutlierDetector<string>? outliers = null;
        if (dr.TrafficPolicy?.OutlierDetection is { } od)
        {
            outliers = new OutlierDetector<string>(od, new FakeTimeProvider());
            outliers.SetHosts(EndpointPicker.Candidates(snapshot, backend).Select(c => c.Workload.Uid));
            foreach (var name in ejected.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var uid = Pod(snapshot, name).Uid;
                outliers.Report(uid, UpstreamOutcome.Response, 503);
                Assert.True(outliers.IsEjected(uid), $"{name} was not ejected");
            }
        }
        var picker = new EndpointPicker(Snapshots.Waypoint);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < 400; i++)
        {
            var p = picker.Pick(snapshot, backend, Snapshots.Request("GET", "/"), IPAddress.Parse("10.0.3.1"), outliers)!.Value;
            p.Load?.Release();
            seen.Add(p.Workload.Name);
        }
        Assert.Equal(expected.Split(' ').Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
    }

    [Theory]
    // Envoy's priority load: a rank keeps everything down to 1/1.4 healthy, then spills the rest to the next.
    [InlineData(4, 4, 1.0)]
    [InlineData(3, 4, 1.0)]   // 75% healthy x 1.4 > 100%
    [InlineData(2, 4, 0.7)]   // 50% x 1.4
    [InlineData(1, 4, 0.35)]
    public void AHalfHealthyLocalitySpillsWhatItCannotCarry(int healthy, int total, double localShare)
    {
        var own = new Locality("r1", "z1");
        var all = new List<(Workload, int)>();
        for (int i = 0; i < total; i++)
        {
            all.Add((new Workload { Uid = $"local{i}", Name = $"local{i}", Namespace = "shop", Locality = own }, 80));
        }
        all.Add((new Workload { Uid = "remote", Name = "remote", Namespace = "shop", Locality = new Locality("r2", "z1") }, 80));
        var available = all.Where(c => c.Item1.Uid == "remote" || int.Parse(c.Item1.Uid[5..], System.Globalization.CultureInfo.InvariantCulture) < healthy).ToList();
        int local = 0;
        const int Draws = 1000;
        for (int i = 0; i < Draws; i++)
        {
            // Evenly spaced draws make the share exact rather than random.
            var picked = LocalityPriority.Narrow(all, available, own, null, (i + 0.5) / Draws);
            if (picked.All(c => c.Workload.Locality == own))
            {
                local++;
            }
        }
        Assert.Equal(localShare, local / (double)Draws, 2);
    }

    private static Workload Pod(Mesh.State.MeshSnapshot snapshot, string name) =>
        snapshot.FindWorkloadByIp(IPAddress.Parse("10.0.9." + (name[0] - 'a' + 1)))!;
}
