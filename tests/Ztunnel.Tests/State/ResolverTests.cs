using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;
using Ambient.Ztunnel.State;

namespace Ambient.Ztunnel.Tests.State;

/// <summary>
/// Outbound resolution: a service VIP becomes one of its endpoints (target port translated), a workload address goes
/// to that workload, anything else passes through; waypoints are chosen by <see cref="WaypointChoice"/>, the one rule
/// the destination's inbound side also checks against.
/// </summary>
public sealed class ResolverTests
{
    private const string TrustDomain = "cluster.local";
    private static readonly IPAddress Vip = IPAddress.Parse("127.30.0.100");

    private static Workload Pod(string name, string ip, InboundProtocol protocol = InboundProtocol.Hbone, HealthStatus status = HealthStatus.Healthy,
        GatewayAddress? waypoint = null, string service = "shop/web.shop.svc.cluster.local", int targetPort = 8080) => new()
    {
        Uid = $"uid/{name}",
        Name = name,
        Namespace = "shop",
        ServiceAccount = name,
        WorkloadIps = [IPAddress.Parse(ip)],
        Protocol = protocol,
        Status = status,
        Waypoint = waypoint,
        Services = ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty.Add(service, ImmutableDictionary<int, int>.Empty.Add(80, targetPort)),
    };

    private static Service Web(GatewayAddress? waypoint = null, LoadBalancing? lb = null) => new()
    {
        Name = "web",
        Namespace = "shop",
        Hostname = "web.shop.svc.cluster.local",
        Vips = [new NetworkAddress("", Vip)],
        Ports = ImmutableDictionary<int, int>.Empty.Add(80, 8080),
        Waypoint = waypoint,
        LoadBalancing = lb,
    };

    private static Service WaypointService => new()
    {
        Name = "waypoint",
        Namespace = "shop",
        Hostname = "waypoint.shop.svc.cluster.local",
        Vips = [new NetworkAddress("", IPAddress.Parse("127.30.0.200"))],
        Ports = ImmutableDictionary<int, int>.Empty.Add(15008, 15008),
    };

    private static GatewayAddress ByHostname(int port = 15008) => new("waypoint.shop.svc.cluster.local", "shop", null, "", port);

    private static MeshSnapshot Snapshot(IEnumerable<Workload> workloads, IEnumerable<Service> services) =>
        MeshSnapshot.Build(new MeshResources { Workloads = [.. workloads], Services = [.. services] }, 1);

    private static readonly Resolver Resolver = new(TrustDomain);

    [Fact]
    public void ServiceVip_GoesToAnEndpoint_OverHbone_WithTheTargetPortAndItsIdentity()
    {
        var snapshot = Snapshot([Pod("web-0", "127.30.0.1", targetPort: 9090)], [Web()]);
        var route = Resolver.Resolve(snapshot, new IPEndPoint(Vip, 80), null);
        Assert.Equal(RouteKind.Hbone, route.Kind);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.30.0.1"), 9090), route.Destination);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.30.0.1"), 15008), route.HboneEndpoint);
        Assert.Equal("127.30.0.1:9090", route.Authority);
        Assert.Equal(["spiffe://cluster.local/ns/shop/sa/web-0"], route.ExpectedIdentities);
        Assert.Equal("web", route.Service!.Name);
        Assert.Null(route.Waypoint);
    }

    [Fact]
    public void ServiceWithoutThePortOrHealthyEndpoints_IsRefusedWithItsFlag()
    {
        var snapshot = Snapshot([Pod("web-0", "127.30.0.1", status: HealthStatus.Unhealthy)], [Web()]);
        Assert.Equal("NR", Assert.Throws<RouteException>(() => Resolver.Resolve(snapshot, new IPEndPoint(Vip, 81), null)).Flag);
        var noEndpoint = Assert.Throws<RouteException>(() => Resolver.Resolve(snapshot, new IPEndPoint(Vip, 80), null));
        Assert.Equal("UH", noEndpoint.Flag);
        Assert.Contains("no healthy endpoints", noEndpoint.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WorkloadAddress_TcpWorkload_AndUnknownAddress()
    {
        var snapshot = Snapshot([Pod("legacy", "127.30.0.5", InboundProtocol.Tcp)], []);
        var tcp = Resolver.Resolve(snapshot, new IPEndPoint(IPAddress.Parse("127.30.0.5"), 7000), null);
        Assert.Equal(RouteKind.Tcp, tcp.Kind);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.30.0.5"), 7000), tcp.Destination);
        var unknown = Resolver.Resolve(snapshot, new IPEndPoint(IPAddress.Parse("127.30.0.77"), 7000), null);
        Assert.Equal(RouteKind.Passthrough, unknown.Kind);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.30.0.77"), 7000), unknown.Destination);
    }

    [Fact]
    public void ServiceWithAWaypoint_GoesThroughIt_OnItsHboneMtlsPort_KeepingTheVipAsAuthority()
    {
        var waypoint = Pod("waypoint", "127.30.0.9", service: "shop/waypoint.shop.svc.cluster.local", targetPort: 15008);
        var snapshot = Snapshot([Pod("web-0", "127.30.0.1"), waypoint], [Web(ByHostname(15099)), WaypointService]);
        var route = Resolver.Resolve(snapshot, new IPEndPoint(Vip, 80), Pod("client", "127.30.0.50"));
        Assert.Equal(RouteKind.Hbone, route.Kind);
        Assert.Equal("waypoint", route.Waypoint!.Name);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.30.0.9"), 15099), route.HboneEndpoint);
        Assert.Equal($"{Vip}:80", route.Authority);
        Assert.Equal(["spiffe://cluster.local/ns/shop/sa/waypoint"], route.ExpectedIdentities);

        // The waypoint's own traffic to the service goes to an endpoint, never back to itself.
        var fromWaypoint = Resolver.Resolve(snapshot, new IPEndPoint(Vip, 80), waypoint);
        Assert.Null(fromWaypoint.Waypoint);
        Assert.Equal("web-0", fromWaypoint.DestinationWorkload!.Name);
    }

    [Fact]
    public void WaypointChoice_IsTheFirstHealthyEndpoint_ForTheClientAndForTheDestinationAlike()
    {
        var down = Pod("waypoint-a", "127.30.0.8", status: HealthStatus.Unhealthy, service: "shop/waypoint.shop.svc.cluster.local");
        var up = Pod("waypoint-b", "127.30.0.9", service: "shop/waypoint.shop.svc.cluster.local");
        var target = Pod("web-0", "127.30.0.1", waypoint: ByHostname());
        var snapshot = Snapshot([down, up, target], [Web(), WaypointService]);

        Assert.Equal("waypoint-b", WaypointChoice.Find(snapshot, ByHostname())!.Name);
        // A workload reached by its address goes through its own waypoint; reached through a service without one, it does not.
        var direct = Resolver.Resolve(snapshot, new IPEndPoint(IPAddress.Parse("127.30.0.1"), 8080), null);
        Assert.Equal("waypoint-b", direct.Waypoint!.Name);
        Assert.Equal($"127.30.0.1:8080", direct.Authority);
        Assert.Null(Resolver.Resolve(snapshot, new IPEndPoint(Vip, 80), null).Waypoint);

        // By address: the workload with that address on the gateway's network, whatever its health.
        Assert.Equal("waypoint-a", WaypointChoice.Find(snapshot, new GatewayAddress(null, null, IPAddress.Parse("127.30.0.8"), ""))!.Name);
        Assert.Null(WaypointChoice.Find(snapshot, new GatewayAddress(null, null, IPAddress.Parse("127.30.0.8"), "other-network")));
        Assert.Null(WaypointChoice.Find(snapshot, new GatewayAddress("missing.shop.svc.cluster.local", "shop", null, "")));
    }

    [Fact]
    public void LoadBalancing_Passthrough_AndStrictWithoutAMatch()
    {
        var snapshot = Snapshot([Pod("web-0", "127.30.0.1")], [Web(lb: new LoadBalancing([], LoadBalancingMode.Passthrough))]);
        var passthrough = Resolver.Resolve(snapshot, new IPEndPoint(Vip, 80), null);
        Assert.Equal(RouteKind.Passthrough, passthrough.Kind);
        Assert.Equal(new IPEndPoint(Vip, 80), passthrough.Destination);

        var strict = Snapshot([Pod("web-0", "127.30.0.1") with { Node = "n2" }], [Web(lb: new LoadBalancing([LoadBalancingScope.Node], LoadBalancingMode.Strict))]);
        var client = Pod("client", "127.30.0.50") with { Node = "n1" };
        var refused = Assert.Throws<RouteException>(() => Resolver.Resolve(strict, new IPEndPoint(Vip, 80), client));
        Assert.Equal("UH", refused.Flag);
        Assert.Contains("STRICT", refused.Message, StringComparison.Ordinal);
        Assert.Equal("web-0", Resolver.Resolve(strict, new IPEndPoint(Vip, 80), client with { Node = "n2" }).DestinationWorkload!.Name);
    }
}
