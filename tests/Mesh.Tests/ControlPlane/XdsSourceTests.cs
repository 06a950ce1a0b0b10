using System.Net;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Protos.Envoy;
using Ambient.Mesh.Sources;
using Ambient.Mesh.Sources.Xds;
using Ambient.Mesh.Tests.ControlPlane.Support;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Pw = Ambient.Mesh.Protos.Istio.Workload;
using Ps = Ambient.Mesh.Protos.Istio.Security;

namespace Ambient.Mesh.Tests.ControlPlane;

/// <summary>
/// The xDS source against an in-process istiod (<see cref="FakeIstiod"/>) over the real protocol: Delta ADS on HTTP/2,
/// the agent's own protos on both sides.
/// </summary>
public sealed class XdsSourceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    internal static Pw.Address Workload(string name, IPAddress ip, string node = "node-b", string sa = "echo", params (string Service, uint Port, uint Target)[] services)
    {
        var w = new Pw.Workload
        {
            Uid = $"Kubernetes//Pod/shop/{name}",
            Name = name,
            Namespace = "shop",
            Addresses = { ByteString.CopyFrom(ip.GetAddressBytes()) },
            TunnelProtocol = Pw.TunnelProtocol.Hbone,
            ServiceAccount = sa,
            Node = node,
            WorkloadType = Pw.WorkloadType.Pod,
            WorkloadName = name,
            ClusterId = "Kubernetes",
        };
        foreach (var (service, port, target) in services)
        {
            w.Services[service] = new Pw.PortList { Ports = { new Pw.Port { ServicePort = port, TargetPort = target } } };
        }
        return new Pw.Address { Workload = w };
    }

    internal static Pw.Address Service(string name, IPAddress vip, uint port, uint target) => new()
    {
        Service = new Pw.Service
        {
            Name = name,
            Namespace = "shop",
            Hostname = $"{name}.shop.svc.cluster.local",
            Addresses = { new Pw.NetworkAddress { Address = ByteString.CopyFrom(vip.GetAddressBytes()) } },
            Ports = { new Pw.Port { ServicePort = port, TargetPort = target } },
        },
    };

    internal static Ps.Authorization DenyFrom(string name, string principal) => new()
    {
        Name = name,
        Namespace = "shop",
        Scope = Ps.Scope.Namespace,
        Action = Ps.Action.Deny,
        Rules = { new Ps.Rule { Clauses = { new Ps.Clause { Matches = { new Ps.Match { Principals = { new Ps.StringMatch { Exact = principal } } } } } } } },
    };

    internal sealed class Harness : IAsyncDisposable
    {
        public required FakeIstiod Istiod { get; init; }
        public required MeshStore Store { get; init; }
        public required XdsSource Source { get; init; }
        public required string Dir { get; init; }

        public async ValueTask DisposeAsync()
        {
            await Source.StopAsync(CancellationToken.None).WaitAsync(Timeout);
            await Source.DisposeAsync();
            await Istiod.DisposeAsync();
            Directory.Delete(Dir, recursive: true);
        }
    }

    internal static async Task<Harness> StartAsync(Action<FakeIstiod>? seed = null, bool onDemand = false, TimeSpan? onDemandTimeout = null)
    {
        var istiod = await FakeIstiod.StartAsync();
        string dir = Directory.CreateTempSubdirectory("ambient-xds-").FullName;
        seed?.Invoke(istiod);
        string token = Path.Combine(dir, "istio-token");
        await File.WriteAllTextAsync(token, "token-1\n");
        var env = new Dictionary<string, string>
        {
            ["XDS_ADDRESS"] = istiod.Url.ToString(),
            ["AUTH_TOKEN"] = token,
            ["POD_NAME"] = "ztunnel-abcde",
            ["POD_NAMESPACE"] = "istio-system",
            ["NODE_NAME"] = "node-a",
            ["INSTANCE_IP"] = "127.0.0.1",
            ["ISTIO_META_CLUSTER_ID"] = "cluster-7",
            ["ISTIO_META_ENABLE_HBONE"] = "true",
        };
        if (onDemand)
        {
            env["XDS_ON_DEMAND"] = "true";
        }
        ControlPlaneOptions options = ControlPlaneOptions.FromEnvironment(env);
        if (onDemandTimeout is { } t)
        {
            options = options with { OnDemandTimeout = t };
        }
        var store = new MeshStore(NullLogger<MeshStore>.Instance);
        var source = new XdsSource(store, options, new ControlPlaneConnection(options.XdsAddress!, options.XdsRootCert, options.TokenFile, options.ClusterId), NullLogger.Instance)
        {
            Backoff = new Backoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(200)),
        };
        await source.StartAsync(CancellationToken.None);
        return new Harness { Istiod = istiod, Store = store, Source = source, Dir = dir };
    }

    internal static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        long deadline = Environment.TickCount64 + (long)Timeout.TotalMilliseconds;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                Assert.Fail($"timed out waiting for: {what}");
            }
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Initial_sync_applies_both_types_acks_them_and_sends_istios_node_and_call_metadata()
    {
        await using var h = await StartAsync(istiod =>
        {
            istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/echo", Workload("echo", IPAddress.Parse("127.61.0.20")));
            istiod.Set(XdsSource.AddressType, "shop/echo.shop.svc.cluster.local", Service("echo", IPAddress.Parse("127.61.0.100"), 80, 8080));
            istiod.Set(XdsSource.AuthorizationType, "shop/deny-bad", DenyFrom("deny-bad", "cluster.local/ns/shop/sa/bad"));
        });

        await h.Source.Source.Synced.WaitAsync(Timeout);
        Assert.True(h.Store.IsSynced);
        var snapshot = h.Store.Current;
        var echo = snapshot.FindWorkloadByUid("Kubernetes//Pod/shop/echo");
        Assert.NotNull(echo);
        Assert.Equal(IPAddress.Parse("127.61.0.20"), Assert.Single(echo.WorkloadIps));
        Assert.Equal(Model.InboundProtocol.Hbone, echo.Protocol);
        Assert.Equal("echo", echo.ServiceAccount);
        var svc = snapshot.FindServiceByVip(IPAddress.Parse("127.61.0.100"));
        Assert.NotNull(svc);
        Assert.Equal(8080, svc.Ports[80]);
        var policy = snapshot.FindPolicy("shop/deny-bad");
        Assert.NotNull(policy);
        Assert.Equal(Model.PolicyAction.Deny, policy.Action);

        // Both initial requests carry the node exactly as Istio's ztunnel builds it.
        var requests = h.Istiod.Requests;
        var initial = requests.Where(r => r.Request.ResponseNonce.Length == 0).Select(r => r.Request).ToList();
        Assert.Equal([XdsSource.AuthorizationType, XdsSource.AddressType], initial.Select(r => r.TypeUrl).Order(StringComparer.Ordinal));
        Assert.All(initial, r => Assert.Empty(r.ResourceNamesSubscribe));
        var node = initial[0].Node;
        Assert.Equal("ztunnel~127.0.0.1~ztunnel-abcde.istio-system~istio-system.svc.cluster.local", node.Id);
        var meta = node.Metadata.Fields;
        Assert.Equal("ztunnel-abcde", meta["NAME"].StringValue);
        Assert.Equal("istio-system", meta["NAMESPACE"].StringValue);
        Assert.Equal("127.0.0.1", meta["INSTANCE_IPS"].StringValue);
        Assert.Equal("node-a", meta["NODE_NAME"].StringValue);
        Assert.Equal("cluster-7", meta["CLUSTER_ID"].StringValue);
        Assert.Equal("true", meta["ENABLE_HBONE"].StringValue);

        // Each response answered with its nonce and no error.
        await EventuallyAsync(() => h.Istiod.Requests.Count(r => r.Request.ResponseNonce.Length > 0) >= 2, "two ACKs");
        Assert.All(h.Istiod.Requests.Where(r => r.Request.ResponseNonce.Length > 0), r => Assert.Null(r.Request.ErrorDetail));

        var call = Assert.Single(h.Istiod.Calls);
        Assert.Equal("Bearer token-1", call.Authorization);
        Assert.Equal("cluster-7", call.ClusterId);
    }

    [Fact]
    public async Task Added_and_removed_resources_apply_live()
    {
        await using var h = await StartAsync();
        await h.Source.Source.Synced.WaitAsync(Timeout);
        Assert.Empty(h.Store.Current.Workloads);

        h.Istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/late", Workload("late", IPAddress.Parse("127.61.1.20")));
        await EventuallyAsync(() => h.Store.Current.FindWorkloadByIp(IPAddress.Parse("127.61.1.20")) is not null, "the added workload");
        h.Istiod.Set(XdsSource.AuthorizationType, "shop/deny-bad", DenyFrom("deny-bad", "x"));
        await EventuallyAsync(() => h.Store.Current.FindPolicy("shop/deny-bad") is not null, "the added policy");

        h.Istiod.Remove(XdsSource.AddressType, "Kubernetes//Pod/shop/late");
        h.Istiod.Remove(XdsSource.AuthorizationType, "shop/deny-bad");
        await EventuallyAsync(() => h.Store.Current.FindWorkloadByIp(IPAddress.Parse("127.61.1.20")) is null, "the removal of the workload");
        await EventuallyAsync(() => h.Store.Current.FindPolicy("shop/deny-bad") is null, "the removal of the policy");
    }

    [Fact]
    public async Task An_invalid_resource_is_nacked_by_name_while_the_valid_ones_apply_and_its_last_good_version_stays()
    {
        await using var h = await StartAsync(istiod =>
            istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/keep", Workload("keep", IPAddress.Parse("127.61.2.20"))));
        await h.Source.Source.Synced.WaitAsync(Timeout);

        // One response: a good new workload; "keep" with a 5-byte address; a workload with no uid; a body of the wrong type.
        var broken = Workload("keep", IPAddress.Parse("127.61.2.20"));
        broken.Workload.Addresses[0] = ByteString.CopyFrom(1, 2, 3, 4, 5);
        var noUid = Workload("nouid", IPAddress.Parse("127.61.2.22"));
        noUid.Workload.Uid = "";
        string nonce = h.Istiod.PushRaw(XdsSource.AddressType,
            new Resource { Name = "Kubernetes//Pod/shop/good", Version = "v9", Resource_ = Any.Pack(Workload("good", IPAddress.Parse("127.61.2.21"))) },
            new Resource { Name = "Kubernetes//Pod/shop/keep", Version = "v10", Resource_ = Any.Pack(broken) },
            new Resource { Name = "Kubernetes//Pod/shop/nouid", Version = "v11", Resource_ = Any.Pack(noUid) },
            new Resource { Name = "Kubernetes//Pod/shop/wrong", Version = "v12", Resource_ = Any.Pack(DenyFrom("x", "y")) });

        await EventuallyAsync(() => h.Istiod.Requests.Any(r => r.Request.ResponseNonce == nonce), "the answer to the mixed response");
        var nack = h.Istiod.Requests.Single(r => r.Request.ResponseNonce == nonce).Request;
        Assert.Equal(XdsSource.AddressType, nack.TypeUrl);
        Assert.NotNull(nack.ErrorDetail);
        string message = nack.ErrorDetail.Message;
        Assert.Contains("istio.workload.Address/Kubernetes//Pod/shop/keep: addresses: 5 bytes is not an IPv4 (4) or IPv6 (16) address", message, StringComparison.Ordinal);
        Assert.Contains("istio.workload.Address/Kubernetes//Pod/shop/nouid: uid is required", message, StringComparison.Ordinal);
        Assert.Contains("istio.workload.Address/Kubernetes//Pod/shop/wrong: the body is a type.googleapis.com/istio.security.Authorization", message, StringComparison.Ordinal);
        Assert.DoesNotContain("shop/good", message, StringComparison.Ordinal);

        var snapshot = h.Store.Current;
        Assert.NotNull(snapshot.FindWorkloadByIp(IPAddress.Parse("127.61.2.21")));
        Assert.Equal("keep", snapshot.FindWorkloadByIp(IPAddress.Parse("127.61.2.20"))?.Name);
        var status = h.Store.Sources.Single(s => s.Name.StartsWith("xds:", StringComparison.Ordinal));
        Assert.Equal(3, status.Errors.Length);

        // The refused resource's held version is still the last good one: a reconnect reports that.
        h.Istiod.DropStreams();
        await EventuallyAsync(() => h.Istiod.Requests.Any(r => r.Stream == 2 && r.Request.TypeUrl == XdsSource.AddressType), "the reconnect");
        var again = h.Istiod.Requests.First(r => r.Stream == 2 && r.Request.TypeUrl == XdsSource.AddressType).Request;
        Assert.Equal("1", again.InitialResourceVersions["Kubernetes//Pod/shop/keep"]);
        Assert.Equal("v9", again.InitialResourceVersions["Kubernetes//Pod/shop/good"]);
        Assert.False(again.InitialResourceVersions.ContainsKey("Kubernetes//Pod/shop/nouid"));
    }

    [Fact]
    public async Task Reconnects_with_initial_resource_versions_and_keeps_serving_meanwhile()
    {
        await using var h = await StartAsync(istiod =>
        {
            istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/a", Workload("a", IPAddress.Parse("127.61.3.20")));
            istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/b", Workload("b", IPAddress.Parse("127.61.3.21")));
            istiod.Set(XdsSource.AuthorizationType, "shop/p", DenyFrom("p", "x"));
        });
        await h.Source.Source.Synced.WaitAsync(Timeout);

        // istiod goes away; while it is away "b" is deleted.
        h.Istiod.DropStreams();
        h.Istiod.RemoveQuietly(XdsSource.AddressType, "Kubernetes//Pod/shop/b");
        Assert.NotNull(h.Store.Current.FindWorkloadByIp(IPAddress.Parse("127.61.3.21")));

        await EventuallyAsync(() => h.Istiod.Requests.Count(r => r.Stream == 2 && r.Request.ResponseNonce.Length == 0) == 2, "both initial requests on the new stream");
        var reconnect = h.Istiod.Requests.Where(r => r.Stream == 2 && r.Request.ResponseNonce.Length == 0).ToDictionary(r => r.Request.TypeUrl, r => r.Request);
        Assert.Equal(
            new Dictionary<string, string> { ["Kubernetes//Pod/shop/a"] = "1", ["Kubernetes//Pod/shop/b"] = "2" },
            reconnect[XdsSource.AddressType].InitialResourceVersions.ToDictionary());
        Assert.Equal(new Dictionary<string, string> { ["shop/p"] = "3" }, reconnect[XdsSource.AuthorizationType].InitialResourceVersions.ToDictionary());
        Assert.NotNull(reconnect[XdsSource.AddressType].Node);

        // The server answered with the removal of "b" only; "a" and the policy stay.
        await EventuallyAsync(() => h.Store.Current.FindWorkloadByIp(IPAddress.Parse("127.61.3.21")) is null, "b removed after the reconnect");
        Assert.NotNull(h.Store.Current.FindWorkloadByIp(IPAddress.Parse("127.61.3.20")));
        Assert.NotNull(h.Store.Current.FindPolicy("shop/p"));
        Assert.True(h.Source.Counters.Connects >= 2);
    }

    [Fact]
    public void Istio_environment_variables_configure_the_control_plane()
    {
        var o = ControlPlaneOptions.FromEnvironment(new Dictionary<string, string>
        {
            ["XDS_ADDRESS"] = "istiod.istio-system.svc:15012",
            ["ISTIO_META_CLUSTER_ID"] = "east",
            ["TRUST_DOMAIN"] = "example.org",
        });
        Assert.Equal(new Uri("https://istiod.istio-system.svc:15012"), o.XdsAddress);
        Assert.Equal(o.XdsAddress, o.CaAddress);
        Assert.Equal(ControlPlaneOptions.DefaultRootCert, o.CaRootCert);
        Assert.Equal(ControlPlaneOptions.DefaultTokenFile, o.TokenFile);
        Assert.Equal("east", o.ClusterId);
        Assert.Equal("example.org", o.TrustDomain);
        var ex = Assert.Throws<FormatException>(() => ControlPlaneOptions.FromEnvironment(new Dictionary<string, string> { ["CA_ADDRESS"] = "ftp://x:1" }));
        Assert.Contains("CA_ADDRESS", ex.Message, StringComparison.Ordinal);
    }
}
