using System.Net;
using Ambient.Mesh.Sources.Xds;
using static Ambient.Mesh.Tests.ControlPlane.XdsSourceTests;
using Harness = Ambient.Mesh.Tests.ControlPlane.XdsSourceTests.Harness;

namespace Ambient.Mesh.Tests.ControlPlane;

/// <summary>
/// XDS_ON_DEMAND against the in-process istiod: the Address subscription starts empty ("*" subscribed and unsubscribed,
/// as Istio's ztunnel sends it), an address is asked for by its <c>network/ip</c> name, concurrent askers share one
/// subscription, and a negative answer is neither waited for nor asked again for a while.
/// </summary>
public sealed class XdsOnDemandTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static IEnumerable<Protos.Envoy.DeltaDiscoveryRequest> Subscriptions(Harness h, string name) =>
        h.Istiod.Requests.Select(r => r.Request).Where(r => r.ResponseNonce.Length == 0 && r.Node is null && r.ResourceNamesSubscribe.Contains(name));

    private static void SeedEcho(Support.FakeIstiod istiod, IPAddress ip) =>
        istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/echo", Workload("echo", ip), XdsSource.AddressName(ip, ""));

    [Fact]
    public async Task Starts_without_the_address_wildcard_and_fetches_one_address_once_for_concurrent_askers()
    {
        var ip = IPAddress.Parse("127.61.5.20");
        await using var h = await StartAsync(istiod =>
        {
            SeedEcho(istiod, ip);
            istiod.Set(XdsSource.AuthorizationType, "shop/deny-bad", DenyFrom("deny-bad", "x"));
        }, onDemand: true);

        // Ready on the first policy push alone: an on-demand type has no first push to wait for.
        await h.Source.Source.Synced.WaitAsync(Wait);
        Assert.NotNull(h.Store.Current.FindPolicy("shop/deny-bad"));
        Assert.Null(h.Store.Current.FindWorkloadByIp(ip));

        var initial = h.Istiod.Requests.Where(r => r.Request.ResponseNonce.Length == 0 && r.Request.Node is not null).ToDictionary(r => r.Request.TypeUrl, r => r.Request);
        Assert.Equal(["*"], initial[XdsSource.AddressType].ResourceNamesSubscribe);
        Assert.Equal(["*"], initial[XdsSource.AddressType].ResourceNamesUnsubscribe);
        Assert.Empty(initial[XdsSource.AuthorizationType].ResourceNamesSubscribe);
        Assert.Empty(initial[XdsSource.AuthorizationType].ResourceNamesUnsubscribe);
        var node = initial[XdsSource.AddressType].Node;
        Assert.Equal("ztunnel~127.0.0.1~ztunnel-abcde.istio-system~istio-system.svc.cluster.local", node.Id);
        Assert.Equal("node-a", node.Metadata.Fields["NODE_NAME"].StringValue);
        Assert.Equal("cluster-7", node.Metadata.Fields["CLUSTER_ID"].StringValue);

        // Five connections to the same unknown address at once: one subscription naming exactly "/127.61.5.20".
        await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => h.Source.DemandAddressAsync(ip, "", CancellationToken.None))).WaitAsync(Wait);
        Assert.NotNull(h.Store.Current.FindWorkloadByIp(ip));
        var sub = Assert.Single(Subscriptions(h, "/127.61.5.20"));
        Assert.Equal(["/127.61.5.20"], sub.ResourceNamesSubscribe);
        Assert.Equal(XdsSource.AddressType, sub.TypeUrl);
        Assert.Equal(1, h.Source.DemandsSent);

        // The subscription stays: a later change to that workload is pushed without asking again.
        h.Istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/echo", Workload("echo", ip, sa: "echo-v2"), XdsSource.AddressName(ip, ""));
        await EventuallyAsync(() => h.Store.Current.FindWorkloadByIp(ip)?.ServiceAccount == "echo-v2", "the pushed update of the demanded workload");
        Assert.Equal(1, h.Source.DemandsSent);

        // A reconnect re-subscribes what was asked for and what is held, with no wildcard.
        h.Istiod.DropStreams();
        await EventuallyAsync(() => h.Istiod.Requests.Any(r => r.Stream == 2 && r.Request.TypeUrl == XdsSource.AddressType && r.Request.Node is not null), "the address request of the new stream");
        var again = h.Istiod.Requests.First(r => r.Stream == 2 && r.Request.TypeUrl == XdsSource.AddressType && r.Request.Node is not null).Request;
        Assert.Equal(["*"], again.ResourceNamesUnsubscribe);
        Assert.Contains("/127.61.5.20", again.InitialResourceVersions.Keys);
        Assert.Contains("Kubernetes//Pod/shop/echo", again.InitialResourceVersions.Keys);
    }

    [Fact]
    public async Task An_address_the_control_plane_does_not_know_is_answered_negatively_and_not_asked_again_at_once()
    {
        var unknown = IPAddress.Parse("127.61.6.99");
        await using var h = await StartAsync(onDemand: true);
        await h.Source.Source.Synced.WaitAsync(Wait);

        // istiod answers an unknown name with removed_resources; the wait ends on it (not on the timeout).
        await h.Source.DemandAddressAsync(unknown, "", CancellationToken.None).WaitAsync(Wait);
        Assert.Null(h.Store.Current.FindWorkloadByIp(unknown));
        Assert.Single(Subscriptions(h, "/127.61.6.99"));

        // A storm of connections to it right after: no new subscription, no wait.
        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => h.Source.DemandAddressAsync(unknown, "", CancellationToken.None))).WaitAsync(Wait);
        Assert.Single(Subscriptions(h, "/127.61.6.99"));
        Assert.Equal(1, h.Source.DemandsSent);

        // Still subscribed: when the address appears, it is pushed.
        SeedEcho(h.Istiod, unknown);
        await EventuallyAsync(() => h.Store.Current.FindWorkloadByIp(unknown) is not null, "the workload created after the negative answer");
    }

    [Fact]
    public async Task A_silent_control_plane_ends_the_wait_after_the_timeout_and_the_miss_is_remembered()
    {
        var ip = IPAddress.Parse("127.61.7.20");
        await using var h = await StartAsync(istiod => SeedEcho(istiod, ip), onDemand: true, onDemandTimeout: TimeSpan.FromMilliseconds(300));
        await h.Source.Source.Synced.WaitAsync(Wait);
        h.Istiod.AnswerOnDemand = false;

        await h.Source.DemandAddressAsync(ip, "", CancellationToken.None).WaitAsync(Wait);
        Assert.Null(h.Store.Current.FindWorkloadByIp(ip));
        await h.Source.DemandAddressAsync(ip, "", CancellationToken.None).WaitAsync(Wait);
        Assert.Single(Subscriptions(h, "/127.61.7.20"));
    }

    [Fact]
    public async Task Without_on_demand_asking_is_a_no_op()
    {
        await using var h = await StartAsync();
        await h.Source.Source.Synced.WaitAsync(Wait);
        await h.Source.DemandAddressAsync(IPAddress.Parse("127.61.8.1"), "", CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(0, h.Source.DemandsSent);
        Assert.DoesNotContain(h.Istiod.Requests, r => r.Request.ResourceNamesSubscribe.Count > 0);
    }
}
