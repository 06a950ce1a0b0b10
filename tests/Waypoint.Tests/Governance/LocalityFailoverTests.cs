using System.Collections.Immutable;
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
    // failoverPriority: the region label first ranks a and b (r1, as the waypoint) over c and d.
    [InlineData(Outliers + "    loadBalancer: {localityLbSetting: {failoverPriority: [topology.kubernetes.io/region]}}\n", "", "a b")]
    [InlineData(Outliers + "    loadBalancer: {localityLbSetting: {failoverPriority: [topology.kubernetes.io/region]}}\n", "a b", "c d")]
    [InlineData(Outliers + "    loadBalancer: {localityLbSetting: {failoverPriority: [topology.kubernetes.io/region, topology.kubernetes.io/zone]}}\n", "a", "b")]
    [InlineData(Outliers + "    loadBalancer: {localityLbSetting: {failoverPriority: [\"app=none\"]}}\n", "", "a b c d")] // nobody matches: one rank
    [InlineData("    loadBalancer: {localityLbSetting: {failoverPriority: [topology.kubernetes.io/region]}}\n", "", "a b c d")] // needs outlier detection
    // distribute applies without outlier detection; a locality no pattern names gets nothing.
    [InlineData("    loadBalancer: {localityLbSetting: {distribute: [{from: r1/z1/*, to: {r2/*: 100}}]}}\n", "", "c")]
    [InlineData("    loadBalancer: {localityLbSetting: {distribute: [{from: r1/*, to: {r1/z2: 50, r3: 50}}]}}\n", "", "b d")]
    [InlineData("    loadBalancer: {localityLbSetting: {distribute: [{from: r2/*, to: {r2: 100}}]}}\n", "", "a b c d")] // from is not ours
    [InlineData(Outliers + "    loadBalancer: {localityLbSetting: {distribute: [{from: \"*\", to: {r1/z1: 50, r2: 50}}]}}\n", "a", "c")] // a ejected: r1/z1 has none healthy
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

    private static (Workload, int) At(string name, string locality, string labels = "")
    {
        var parts = locality.Split('/');
        var l = labels.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('='))
            .ToImmutableDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal);
        return (new Workload
        {
            Uid = name,
            Name = name,
            Namespace = "shop",
            Locality = new Locality(parts[0], parts.Length > 1 ? parts[1] : "", parts.Length > 2 ? parts[2] : ""),
            Labels = l,
        }, 80);
    }

    /// <summary>The share of evenly spaced draws that lands in each endpoint's locality, named by its endpoints.</summary>
    private static Dictionary<string, double> Shares(Func<double, List<(Workload Workload, int Port)>> narrow)
    {
        const int Draws = 10000;
        var counts = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < Draws; i++)
        {
            string key = string.Join(' ', narrow((i + 0.5) / Draws).Select(c => c.Workload.Name).Order(StringComparer.Ordinal));
            counts[key] = counts.GetValueOrDefault(key) + 1.0 / Draws;
        }
        return counts;
    }

    public static TheoryData<string, string, string, string> DistributeCases => new()
    {
        // name, distribute (from=to:weight,...), unavailable endpoints, expected shares (endpoints=share;...)
        { "named zones take their weights", "r1/z1/*=r1/z1/*:70,r1/z2/*:20,r2/*:10", "", "a1 a2=0.7;b=0.2;c=0.1" },
        // r1/* matches r1/z1 (two endpoints) and r1/z2 (one): 50 shared 2:1, rounded up as Istio does (34 and 17).
        { "a wildcard shares its weight by endpoints", "r1/*=r1/*:50,r2:50", "", "a1 a2=0.3366;b=0.1683;c=0.4950" },
        { "a more specific pattern claims first", "r1=r1/z2:30,r1:70", "", "a1 a2=0.7;b=0.3" },
        // Half of r1/z1 is out: its weight 70 shrinks to 70 x min(1, 1.4 x 1/2) = 49.
        { "an unhealthy locality carries less", "r1/z1=r1/z1:70,r1/z2:30", "a1", "a2=0.6203;b=0.3797" },
        { "the first matching from wins", "r2=r2:100|r1/z1/*=r3:100|*=r1:100", "", "d=1" },
        { "no from matches: no effect", "r2=r2:100", "", "a1 a2 b c d=1" },
        { "nobody healthy where the weights are: their endpoints anyway (panic)", "r1/z1=r1/z1:100", "a1 a2", "a1 a2=1" },
    };

    [Theory]
    [MemberData(nameof(DistributeCases))]
    public void DistributeSplitsTrafficByLocalityWeights(string name, string rules, string unavailable, string expected)
    {
        var own = new Locality("r1", "z1");
        var all = new List<(Workload Workload, int Port)> { At("a1", "r1/z1"), At("a2", "r1/z1"), At("b", "r1/z2"), At("c", "r2/z1"), At("d", "r3/z1") };
        var down = unavailable.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var available = all.FindAll(c => !down.Contains(c.Workload.Name));
        var distribute = rules.Split('|').Select(r =>
        {
            var (from, to) = (r.Split('=')[0], r.Split('=')[1]);
            return new LocalityDistribute(from, to.Split(',').ToImmutableDictionary(t => t.Split(':')[0], t => uint.Parse(t.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture)));
        }).ToImmutableArray();
        var shares = Shares(draw => LocalityPriority.Distribute(all, available, own, distribute, draw) ?? available);
        var want = expected.Split(';').ToDictionary(e => e.Split('=')[0], e => double.Parse(e.Split('=')[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(want.Keys.Order().SequenceEqual(shares.Keys.Order()), $"{name}: got {string.Join("; ", shares.Select(kv => $"{kv.Key}={kv.Value:F4}"))}");
        foreach (var (key, share) in want)
        {
            Assert.True(Math.Abs(shares[key] - share) < 0.001, $"{name}: {key} got {shares[key]:F4}, want {share}");
        }
    }

    [Theory]
    // The waypoint: r1/z1, labels rack=x, tier=gold. Endpoints: e0 (r1, rack x), e1 (r1, rack y), e2 (r2, rack x), e3 (r2, rack y).
    [InlineData("topology.kubernetes.io/region rack", "", "e0")]
    [InlineData("topology.kubernetes.io/region rack", "e0", "e1")]                 // then the same region
    [InlineData("topology.kubernetes.io/region rack", "e0 e1", "e2 e3")]           // then everything else, in one rank
    [InlineData("rack topology.kubernetes.io/region", "e0", "e2")]                 // the order of the labels decides
    [InlineData("tier=silver", "", "e1 e3")]                                       // a value given outright
    [InlineData("tier", "", "e0 e1 e2 e3")]                                        // no endpoint has tier=gold: one rank
    public void FailoverPriorityRanksByTheLabelsInOrder(string labels, string unavailable, string expected)
    {
        var self = At("waypoint", "r1/z1", "rack=x,tier=gold").Item1;
        var all = new List<(Workload Workload, int Port)>
        {
            At("e0", "r1/z1", "rack=x"), At("e1", "r1/z2", "rack=y,tier=silver"), At("e2", "r2/z1", "rack=x"), At("e3", "r2/z1", "rack=y,tier=silver"),
        };
        var down = unavailable.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var available = all.FindAll(c => !down.Contains(c.Workload.Name));
        var setting = new LocalityLbSetting([], [], [.. labels.Split(' ')], null);
        var shares = Shares(draw => LocalityPriority.NarrowByLabels(all, available, self, setting, draw));
        Assert.Equal(expected, Assert.Single(shares).Key);
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
