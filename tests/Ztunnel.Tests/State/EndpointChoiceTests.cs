using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.State;

namespace Ambient.Ztunnel.Tests.State;

/// <summary>
/// Endpoint choice under a service's <c>loadBalancing</c> (Istio's semantics, as ztunnel applies them): which endpoints a
/// client in a given place may reach. Every row draws many times and compares the set of endpoints it got.
/// </summary>
public sealed class EndpointChoiceTests
{
    private const string Svc = "shop/web.shop.svc.cluster.local";

    private static Workload Ep(string name, string region = "r1", string zone = "z1", string subzone = "s1", string node = "n1",
        string network = "", string cluster = "c1", HealthStatus status = HealthStatus.Healthy, int capacity = 1, int targetPort = 8080) => new()
    {
        Uid = $"uid/{name}",
        Name = name,
        Namespace = "shop",
        WorkloadIps = [IPAddress.Parse("127.20.0.1")],
        Locality = new Locality(region, zone, subzone),
        Node = node,
        Network = network,
        ClusterId = cluster,
        Status = status,
        Capacity = capacity,
        Services = ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty.Add(Svc, ImmutableDictionary<int, int>.Empty.Add(80, targetPort)),
    };

    private static Service Web(LoadBalancing? lb) => new()
    {
        Name = "web",
        Namespace = "shop",
        Hostname = "web.shop.svc.cluster.local",
        Ports = ImmutableDictionary<int, int>.Empty.Add(80, 8080),
        LoadBalancing = lb,
    };

    private static readonly Workload Client = Ep("client", region: "r1", zone: "z1", subzone: "s1", node: "n1");

    private static readonly Workload[] Endpoints =
    [
        Ep("same-node", node: "n1"),
        Ep("same-zone", node: "n2"),
        Ep("same-region", zone: "z2", node: "n3"),
        Ep("far", region: "r2", zone: "z9", subzone: "s9", node: "n4"),
    ];

    private static SortedSet<string> Picks(LoadBalancing? lb, IReadOnlyList<Workload> endpoints, Workload? source = null, bool noSource = false)
    {
        var set = EndpointSet.Build(Web(lb), 80, endpoints);
        var random = new Random(8);
        var names = new SortedSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < 400; i++)
        {
            var pick = set.Pick(random, noSource ? null : source ?? Client);
            if (pick is null)
            {
                return names;
            }
            names.Add(pick.Value.Workload.Name);
        }
        return names;
    }

    private static LoadBalancing Lb(LoadBalancingMode mode, params LoadBalancingScope[] scopes) => new([.. scopes], mode);

    public static TheoryData<string, LoadBalancing?, string[], string> Rows => new()
    {
        // Without loadBalancing (or mode unspecified) locality does not matter: every healthy endpoint.
        { "no loadBalancing", null, [], "far,same-node,same-region,same-zone" },
        { "unspecified mode ignores scopes", Lb(LoadBalancingMode.Unspecified, LoadBalancingScope.Zone), [], "far,same-node,same-region,same-zone" },
        // FAILOVER: the best rank present wins; Istio's prefix rule (region, then zone, ... until the first mismatch).
        { "failover prefers the closest", Lb(LoadBalancingMode.Failover, LoadBalancingScope.Region, LoadBalancingScope.Zone, LoadBalancingScope.Subzone, LoadBalancingScope.Node), [], "same-node" },
        { "failover falls back a level", Lb(LoadBalancingMode.Failover, LoadBalancingScope.Region, LoadBalancingScope.Zone, LoadBalancingScope.Subzone, LoadBalancingScope.Node), ["same-node"], "same-zone" },
        { "failover falls back to the region", Lb(LoadBalancingMode.Failover, LoadBalancingScope.Region, LoadBalancingScope.Zone), ["same-node", "same-zone"], "same-region" },
        { "failover falls back to anything", Lb(LoadBalancingMode.Failover, LoadBalancingScope.Region), ["same-node", "same-zone", "same-region"], "far" },
        { "failover ties share the load", Lb(LoadBalancingMode.Failover, LoadBalancingScope.Region, LoadBalancingScope.Zone), [], "same-node,same-zone" },
        // STRICT: only endpoints matching every scope, else none.
        { "strict keeps the matching ones", Lb(LoadBalancingMode.Strict, LoadBalancingScope.Region), [], "same-node,same-region,same-zone" },
        { "strict node", Lb(LoadBalancingMode.Strict, LoadBalancingScope.Node), [], "same-node" },
        { "strict refuses when none match", Lb(LoadBalancingMode.Strict, LoadBalancingScope.Node), ["same-node"], "" },
        { "strict zone without the zone's endpoints", Lb(LoadBalancingMode.Strict, LoadBalancingScope.Region, LoadBalancingScope.Zone), ["same-node", "same-zone"], "" },
        { "strict without scopes is everything", Lb(LoadBalancingMode.Strict), [], "far,same-node,same-region,same-zone" },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void LoadBalancing_ChoosesLikeIstio(string row, LoadBalancing? lb, string[] unhealthy, string expected)
    {
        var endpoints = Endpoints.Select(e => unhealthy.Contains(e.Name) ? e with { Status = HealthStatus.Unhealthy } : e).ToList();
        Assert.True(expected == string.Join(',', Picks(lb, endpoints)), $"{row}: got {string.Join(',', Picks(lb, endpoints))}, expected {expected}");
    }

    [Fact]
    public void HealthPolicy_AllowAll_KeepsUnhealthyEndpoints_OnlyHealthy_DropsThem()
    {
        var endpoints = new[] { Ep("up"), Ep("down", status: HealthStatus.Unhealthy) };
        Assert.Equal(["up"], Picks(null, endpoints));
        Assert.Equal(["up"], Picks(Lb(LoadBalancingMode.Unspecified) with { HealthPolicy = LoadBalancingHealthPolicy.OnlyHealthy }, endpoints));
        Assert.Equal(["down", "up"], Picks(Lb(LoadBalancingMode.Unspecified) with { HealthPolicy = LoadBalancingHealthPolicy.AllowAll }, endpoints));
        // All unhealthy: nothing under ONLY_HEALTHY, still a pick under ALLOW_ALL.
        var allDown = new[] { Ep("down", status: HealthStatus.Unhealthy) };
        Assert.Empty(Picks(null, allDown));
        Assert.Equal(["down"], Picks(Lb(LoadBalancingMode.Failover, LoadBalancingScope.Zone) with { HealthPolicy = LoadBalancingHealthPolicy.AllowAll }, allDown));
    }

    [Fact]
    public void Scopes_Network_Cluster_Subzone_AreComparedWithTheClient()
    {
        var endpoints = new[] { Ep("net-a", network: "a"), Ep("net-b", network: "b"), Ep("other-cluster", network: "a", cluster: "c2"), Ep("other-subzone", network: "a", subzone: "s2") };
        var client = Ep("client", network: "a");
        Assert.Equal(["net-a", "other-cluster", "other-subzone"], Picks(Lb(LoadBalancingMode.Strict, LoadBalancingScope.Network), endpoints, client));
        Assert.Equal(["net-a", "other-subzone"], Picks(Lb(LoadBalancingMode.Strict, LoadBalancingScope.Network, LoadBalancingScope.Cluster), endpoints, client));
        Assert.Equal(["net-a"], Picks(Lb(LoadBalancingMode.Failover, LoadBalancingScope.Network, LoadBalancingScope.Cluster, LoadBalancingScope.Subzone), endpoints, client));
    }

    [Fact]
    public void UnknownClient_MatchesNoScope()
    {
        Assert.Empty(Picks(Lb(LoadBalancingMode.Strict, LoadBalancingScope.Region), Endpoints, noSource: true));
        Assert.Equal(4, Picks(Lb(LoadBalancingMode.Failover, LoadBalancingScope.Region), Endpoints, noSource: true).Count);
    }

    [Fact]
    public void Capacity_WeighsThePick_AndTargetPortsFollowTheWorkload()
    {
        var set = EndpointSet.Build(Web(null), 80, [Ep("big", capacity: 3, targetPort: 9001), Ep("small", capacity: 1, targetPort: 9002)]);
        var random = new Random(3);
        int big = 0;
        const int Draws = 4000;
        for (int i = 0; i < Draws; i++)
        {
            var (w, port) = set.Pick(random, Client)!.Value;
            Assert.Equal(w.Name == "big" ? 9001 : 9002, port);
            big += w.Name == "big" ? 1 : 0;
        }
        // 3:1 capacity: three quarters of the picks, within a wide margin (seeded, so deterministic anyway).
        Assert.InRange(big, Draws * 0.70, Draws * 0.80);
    }
}
