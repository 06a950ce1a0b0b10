using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Ambient.Mesh.Tests.Sources;

public sealed class MeshStoreTests
{
    private static MeshStore NewStore() => new(NullLogger<MeshStore>.Instance);

    private static Workload Pod(string name, string ip, string sa = "default", string ns = "shop") => new()
    {
        Uid = $"Kubernetes//Pod/{ns}/{name}",
        Name = name,
        Namespace = ns,
        ServiceAccount = sa,
        WorkloadIps = [IPAddress.Parse(ip)],
        Protocol = InboundProtocol.Hbone,
        Services = ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty
            .Add($"{ns}/web.{ns}.svc.cluster.local", ImmutableDictionary<int, int>.Empty.Add(80, 8080)),
    };

    private static Service Web(string vip, string ns = "shop") => new()
    {
        Name = "web",
        Namespace = ns,
        Hostname = $"web.{ns}.svc.cluster.local",
        Vips = [new NetworkAddress("", IPAddress.Parse(vip))],
        Ports = ImmutableDictionary<int, int>.Empty.Add(80, 8080),
    };

    private static AuthorizationPolicy DenyAll(string name = "deny-all") => new()
    {
        Name = name,
        Namespace = "shop",
        Action = PolicyAction.Deny,
        Rules = [new PolicyRule([])],
    };

    [Fact]
    public void AChangeUnderAShadowedEntry_ChangesNoSnapshot_ButIsAnnouncedAsASourceUpdate()
    {
        var store = NewStore();
        var cni = store.AddSource("cni", 1000);
        var files = store.AddSource("files", 40);
        files.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1", sa: "first")] });
        cni.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1", sa: "from-cni")] });
        int swaps = 0;
        var updated = new List<string>();
        store.Changed += (_, _) => swaps++;
        store.SourceUpdated += s => updated.Add(s.Name);

        files.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1", sa: "second")] });

        Assert.Equal(0, swaps);
        Assert.Equal("from-cni", store.Current.FindWorkload("shop", "a")!.ServiceAccount);
        Assert.Equal(["files"], updated);
        Assert.Equal("second", store.WorkloadFromOthers("Kubernetes//Pod/shop/a", cni)!.ServiceAccount);
        files.MarkSynced();
        Assert.Equal(["files", "files"], updated);
    }

    [Fact]
    public void HigherPrecedenceWinsAndTheLoserTakesOverWhenTheWinnerWithdraws()
    {
        var store = NewStore();
        var files = store.AddSource("files", 40);
        var api = store.AddSource("kubernetes", 30);
        api.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1", sa: "from-api")] });
        files.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1", sa: "from-files")] });

        Assert.Equal("from-files", store.Current.FindWorkload("shop", "a")!.ServiceAccount);
        Assert.Equal("files", store.Current.OriginOf(MeshSnapshot.OriginKey("workload", "Kubernetes//Pod/shop/a")));
        Assert.Equal(1, store.Sources.Single(s => s.Name == "kubernetes").Shadowed);

        files.Replace(MeshResources.Empty);
        Assert.Equal("from-api", store.Current.FindWorkload("shop", "a")!.ServiceAccount);
        Assert.Equal("kubernetes", store.Current.OriginOf(MeshSnapshot.OriginKey("workload", "Kubernetes//Pod/shop/a")));
    }

    [Fact]
    public void EqualPrecedenceTheSourceAddedFirstWins()
    {
        var store = NewStore();
        var first = store.AddSource("mcp:a", 10);
        var second = store.AddSource("mcp:b", 10);
        second.Replace(new MeshResources { Services = [Web("127.96.0.2")] });
        first.Replace(new MeshResources { Services = [Web("127.96.0.1")] });
        Assert.NotNull(store.Current.FindServiceByVip(IPAddress.Parse("127.96.0.1")));
        Assert.Null(store.Current.FindServiceByVip(IPAddress.Parse("127.96.0.2")));
    }

    [Fact]
    public void DeltasAddReplaceAndRemoveAndEveryIndexFollows()
    {
        var store = NewStore();
        var src = store.AddSource("api", 30);
        src.Replace(new MeshResources { Services = [Web("127.96.0.1")], Workloads = [Pod("a", "127.10.0.1")] });
        var svc = store.Current.FindServiceByHostname("web.shop.svc.cluster.local")!;
        Assert.Single(store.Current.EndpointsOf(svc));

        src.Apply(new MeshDelta { Upserts = new MeshResources { Workloads = [Pod("b", "127.10.0.2")] } });
        Assert.Equal(2, store.Current.EndpointsOf(svc).Count);

        // A changed address: the old one no longer resolves, the new one does.
        src.Apply(new MeshDelta { Upserts = new MeshResources { Workloads = [Pod("a", "127.10.0.3")] } });
        Assert.Null(store.Current.FindWorkloadByIp(IPAddress.Parse("127.10.0.1")));
        Assert.Equal("a", store.Current.FindWorkloadByIp(IPAddress.Parse("127.10.0.3"))!.Name);
        Assert.Equal(2, store.Current.EndpointsOf(svc).Count);

        src.Apply(new MeshDelta { RemovedWorkloads = ["Kubernetes//Pod/shop/b"] });
        Assert.Null(store.Current.FindWorkload("shop", "b"));
        Assert.Null(store.Current.FindWorkloadByIp(IPAddress.Parse("127.10.0.2")));
        Assert.Single(store.Current.EndpointsOf(svc));
        Assert.Single(store.Current.WorkloadsOnNode(""));
    }

    [Fact]
    public void ARemovedSourcesObjectsGoAwayAndOthersStay()
    {
        var store = NewStore();
        var a = store.AddSource("mcp:nacos", 20);
        var b = store.AddSource("mcp:consul", 10);
        a.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1")], Policies = [DenyAll()] });
        b.Replace(new MeshResources { Workloads = [Pod("b", "127.10.0.2")] });
        a.Remove();
        Assert.Null(store.Current.FindWorkload("shop", "a"));
        Assert.Null(store.Current.FindPolicy("shop/deny-all"));
        Assert.NotNull(store.Current.FindWorkload("shop", "b"));
        Assert.DoesNotContain(store.Sources, s => s.Name == "mcp:nacos");
    }

    [Fact]
    public void AConflictingAddressIsRefusedWithTheObjectNamedAndAdmittedWhenTheOwnerLeaves()
    {
        var store = NewStore();
        var files = store.AddSource("files", 40);
        var api = store.AddSource("kubernetes", 30);
        files.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1")] });
        api.Replace(new MeshResources { Workloads = [Pod("intruder", "127.10.0.1")], Services = [Web("127.96.0.1")] });

        // The first owner keeps the address; the refusal names the refused object and the owner.
        Assert.Equal("a", store.Current.FindWorkloadByIp(IPAddress.Parse("127.10.0.1"))!.Name);
        Assert.Null(store.Current.FindWorkload("shop", "intruder"));
        string refusal = Assert.Single(store.Sources.Single(s => s.Name == "kubernetes").Refused);
        Assert.Contains("Kubernetes//Pod/shop/intruder", refusal, StringComparison.Ordinal);
        Assert.Contains("already used by workload shop/a", refusal, StringComparison.Ordinal);
        // The rest of the source's state applied.
        Assert.NotNull(store.Current.FindService("shop/web.shop.svc.cluster.local"));

        files.Replace(MeshResources.Empty);
        Assert.Equal("intruder", store.Current.FindWorkloadByIp(IPAddress.Parse("127.10.0.1"))!.Name);
        Assert.Empty(store.Sources.Single(s => s.Name == "kubernetes").Refused);
    }

    [Fact]
    public void AConflictingVipIsRefused()
    {
        var store = NewStore();
        var src = store.AddSource("api", 30);
        src.Replace(new MeshResources { Services = [Web("127.96.0.1"), Web("127.96.0.1", ns: "other")] });
        Assert.Single(store.Current.Services);
        Assert.Contains(store.Sources.Single().Refused, r => r.Contains("VIP 127.96.0.1 is already used", StringComparison.Ordinal));
    }

    [Fact]
    public void RepublishingEqualStateRaisesNoChange()
    {
        var store = NewStore();
        var src = store.AddSource("files", 40);
        src.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1")], Services = [Web("127.96.0.1")] });
        int changes = 0;
        store.Changed += (_, _) => changes++;
        long version = store.Current.Version;
        // A re-parse builds new objects with new collections: equal by value, so nothing changes.
        src.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1")], Services = [Web("127.96.0.1")] });
        Assert.Equal(0, changes);
        Assert.Equal(version, store.Current.Version);

        src.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1", sa: "other")], Services = [Web("127.96.0.1")] });
        Assert.Equal(1, changes);
    }

    [Fact]
    public void PolicyChangesReachThePolicySets()
    {
        var store = NewStore();
        var src = store.AddSource("files", 40);
        src.Replace(new MeshResources { Workloads = [Pod("a", "127.10.0.1")] });
        var a = store.Current.FindWorkload("shop", "a")!;
        Assert.Empty(store.Current.PoliciesFor(a));
        src.Apply(new MeshDelta { Upserts = new MeshResources { Policies = [DenyAll()] } });
        Assert.Single(store.Current.PoliciesFor(store.Current.FindWorkload("shop", "a")!));
        src.Apply(new MeshDelta { RemovedPolicies = ["shop/deny-all"] });
        Assert.Empty(store.Current.PoliciesFor(store.Current.FindWorkload("shop", "a")!));
    }

    [Fact]
    public void ReadinessWaitsForEveryRequiredSource()
    {
        var store = NewStore();
        var files = store.AddSource("files", 40);
        var api = store.AddSource("kubernetes", 30);
        store.AddSource("cni", 1000, requiredForReadiness: false);
        Assert.False(store.IsSynced);
        files.MarkSynced();
        Assert.False(store.IsSynced);
        api.MarkSynced();
        Assert.True(store.IsSynced);
    }

    [Fact]
    public async Task WhenSyncedAsyncWaitsForEveryRequiredSourceAndNamesTheOnesMissing()
    {
        var store = NewStore();
        var files = store.AddSource("files", 40);
        var api = store.AddSource("kubernetes", 30);
        store.AddSource("cni", 1000, requiredForReadiness: false);
        var synced = store.WhenSyncedAsync(CancellationToken.None);
        Assert.Equal<string>(["files", "kubernetes"], store.UnsyncedSources());
        files.MarkSynced();
        Assert.False(synced.IsCompleted);
        Assert.Equal<string>(["kubernetes"], store.UnsyncedSources());
        api.MarkSynced();
        await synced.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Empty(store.UnsyncedSources());
        // Synced already: completes at once.
        Assert.True(store.WhenSyncedAsync(CancellationToken.None).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task WhenSyncedAsyncIsCancelledWithItsToken()
    {
        var store = NewStore();
        store.AddSource("kubernetes", 30);
        using var cts = new CancellationTokenSource();
        var synced = store.WhenSyncedAsync(cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => synced.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void IncrementalUpdatesMatchAFullBuild()
    {
        // Many random upserts and removals applied one at a time must index exactly like one build of the end state.
        var random = new Random(7);
        var store = NewStore();
        var src = store.AddSource("api", 30);
        var live = new Dictionary<string, Workload>();
        for (int step = 0; step < 400; step++)
        {
            int n = random.Next(60);
            string name = $"p{n}";
            if (random.Next(4) == 0)
            {
                live.Remove($"Kubernetes//Pod/shop/{name}");
                src.Apply(new MeshDelta { RemovedWorkloads = [$"Kubernetes//Pod/shop/{name}"] });
            }
            else
            {
                var w = Pod(name, $"127.10.{random.Next(2)}.{n}") with { Status = random.Next(2) == 0 ? HealthStatus.Healthy : HealthStatus.Unhealthy };
                live[w.Uid] = w;
                src.Apply(new MeshDelta { Upserts = new MeshResources { Workloads = [w] } });
            }
        }
        var full = MeshSnapshot.Build(new MeshResources { Workloads = [.. live.Values] }, 1);
        var inc = store.Current;
        Assert.Equal(full.WorkloadCount, inc.WorkloadCount);
        foreach (var w in live.Values)
        {
            Assert.Equal(w, inc.FindWorkloadByUid(w.Uid));
            Assert.Same(inc.FindWorkloadByUid(w.Uid), inc.FindWorkloadByIp(w.WorkloadIps[0]));
            Assert.Same(inc.FindWorkloadByUid(w.Uid), inc.FindWorkload(w.Namespace, w.Name));
        }
        var web = Web("127.96.0.1");
        Assert.Equal(
            full.EndpointsOf(web).Select(w => w.Uid).Order(StringComparer.Ordinal),
            inc.EndpointsOf(web).Select(w => w.Uid).Order(StringComparer.Ordinal));
        Assert.Equal(live.Count, inc.WorkloadsOnNode("").Count);
    }
}
