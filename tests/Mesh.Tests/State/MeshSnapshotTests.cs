using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Mesh.State;

namespace Ambient.Mesh.Tests.State;

public sealed class MeshSnapshotTests
{
    private static readonly MeshSnapshot Snapshot = MeshSnapshot.Build(ConfigLoader.Parse("""
        workloads:
        - uid: u-a
          name: a
          namespace: ns1
          workloadIps: [10.0.0.1, "fd00::1"]
          node: n1
          services: {"ns1/svc.ns1.svc.cluster.local": {80: 8080}}
          authorizationPolicies: [ns1/selected, ns1/ns-wide]
        - uid: u-b
          name: b
          namespace: ns1
          network: net2
          workloadIps: [10.0.0.1]
          node: n2
          services: {"ns1/svc.ns1.svc.cluster.local": {80: 9090}}
        - uid: u-c
          name: c
          namespace: ns2
          node: n1
          workloadIps: [10.0.0.3]
          networkMode: HostNetwork
        services:
        - name: svc
          namespace: ns1
          hostname: svc.ns1.svc.cluster.local
          vips: [/10.96.0.1, net2/10.96.0.1]
          ports: {80: 8080}
        policies:
        - {name: global, namespace: istio-system, scope: Global, action: Deny}
        - {name: ns-wide, namespace: ns1, scope: Namespace, action: Allow}
        - {name: selected, namespace: ns1, scope: WorkloadSelector, action: Allow}
        - {name: other, namespace: ns2, scope: Namespace, action: Allow}
        """, "s.yaml").Config!, version: 7);

    [Fact]
    public void WorkloadByIpAndNetwork()
    {
        Assert.Equal("a", Snapshot.FindWorkloadByIp(IPAddress.Parse("10.0.0.1"))!.Name);
        Assert.Equal("b", Snapshot.FindWorkloadByIp(IPAddress.Parse("10.0.0.1"), "net2")!.Name);
        Assert.Equal("a", Snapshot.FindWorkloadByIp(IPAddress.Parse("fd00::1"))!.Name);
        Assert.Null(Snapshot.FindWorkloadByIp(IPAddress.Parse("10.0.0.2")));
        Assert.Equal(7, Snapshot.Version);
    }

    [Fact]
    public void Ipv4MappedIpv6MatchesIpv4()
    {
        Assert.Equal("a", Snapshot.FindWorkloadByIp(IPAddress.Parse("::ffff:10.0.0.1"))!.Name);
        Assert.Equal("svc", Snapshot.FindServiceByVip(IPAddress.Parse("::ffff:10.96.0.1"))!.Name);
    }

    [Fact]
    public void HostNetworkWorkloadIsNotFoundByIp()
    {
        Assert.Null(Snapshot.FindWorkloadByIp(IPAddress.Parse("10.0.0.3")));
        Assert.Equal("c", Snapshot.FindWorkloadByUid("u-c")!.Name);
    }

    [Fact]
    public void WorkloadByUidAndName()
    {
        Assert.Equal("b", Snapshot.FindWorkloadByUid("u-b")!.Name);
        Assert.Equal("u-a", Snapshot.FindWorkload("ns1", "a")!.Uid);
        Assert.Null(Snapshot.FindWorkload("ns2", "a"));
    }

    [Fact]
    public void ServicesAndEndpoints()
    {
        Service svc = Snapshot.FindService("ns1/svc.ns1.svc.cluster.local")!;
        Assert.Same(svc, Snapshot.FindServiceByVip(IPAddress.Parse("10.96.0.1"), "net2"));
        Assert.Equal(["a", "b"], Snapshot.EndpointsOf(svc).Select(w => w.Name));
        Assert.Empty(Snapshot.EndpointsOf(svc with { Hostname = "other" }));
    }

    [Fact]
    public void WorkloadsOnNode()
    {
        Assert.Equal(["a", "c"], Snapshot.WorkloadsOnNode("n1").Select(w => w.Name));
        Assert.Empty(Snapshot.WorkloadsOnNode("n9"));
    }

    [Fact]
    public void PoliciesForDestination()
    {
        // Namespace + global + own selector policies; ns-wide listed twice is evaluated once.
        Assert.Equal(["ns1/ns-wide", "istio-system/global", "ns1/selected"],
            Snapshot.PoliciesFor(Snapshot.FindWorkloadByUid("u-a")!).Select(p => p.Key));
        Assert.Equal(["ns1/ns-wide", "istio-system/global"], Snapshot.PoliciesFor(Snapshot.FindWorkloadByUid("u-b")!).Select(p => p.Key));
        Assert.Equal(["ns2/other", "istio-system/global"], Snapshot.PoliciesFor(Snapshot.FindWorkloadByUid("u-c")!).Select(p => p.Key));
        var stranger = new Workload { Uid = "x", Name = "x", Namespace = "ns9", AuthorizationPolicies = ["ns1/selected"] };
        Assert.Equal(["istio-system/global", "ns1/selected"], Snapshot.PoliciesFor(stranger).Select(p => p.Key));
    }

    [Fact]
    public void LookupsDoNotAllocate()
    {
        IPAddress ip = IPAddress.Parse("10.0.0.1");
        IPAddress mapped = IPAddress.Parse("::ffff:10.96.0.1");
        Workload a = Snapshot.FindWorkloadByUid("u-a")!;
        Service svc = Snapshot.FindService("ns1/svc.ns1.svc.cluster.local")!;
        (string Name, Action Lookup)[] lookups =
        [
            ("FindWorkloadByIp", () => Snapshot.FindWorkloadByIp(ip)),
            ("FindServiceByVip", () => Snapshot.FindServiceByVip(mapped)),
            ("FindWorkloadByUid", () => Snapshot.FindWorkloadByUid("u-a")),
            ("FindWorkload", () => Snapshot.FindWorkload("ns1", "a")),
            ("EndpointsOf", () => Snapshot.EndpointsOf(svc)),
            ("WorkloadsOnNode", () => Snapshot.WorkloadsOnNode("n1")),
            ("PoliciesFor", () => Snapshot.PoliciesFor(a)),
        ];
        foreach ((string name, Action lookup) in lookups)
        {
            for (int i = 0; i < 3; i++)
            {
                lookup(); // warm up (JIT, tiering)
            }
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                lookup();
            }
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before == 0, $"{name} allocated {GC.GetAllocatedBytesForCurrentThread() - before} bytes in 1000 calls");
        }
    }
}
