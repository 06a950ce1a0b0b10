using System.Text.Json.Nodes;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.Api;
using Ambient.Mesh.Tests.Kubernetes.Api.Support;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Tests.Kubernetes.Api;

/// <summary>The API watcher against <see cref="FakeKubeApiServer"/>: list, watch, and every way a watch goes wrong.</summary>
public sealed class KubernetesApiWatcherTests
{
    private static readonly TimeSpan Timeout = WatcherHarness.Timeout;

    private static readonly KubeResource[] CoreKinds = [KubeResource.Namespace, KubeResource.Pod, KubeResource.Service, KubeResource.EndpointSlice];

    [Fact]
    public async Task Initial_sync_waits_for_every_kind_then_holds_the_listed_objects()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(seed: s =>
        {
            s.Apply(KubeResource.Namespace, Objects.Namespace("shop", dataplaneMode: "ambient"));
            s.Apply(KubeResource.Pod, Objects.Pod("shop", "web-1"));
            s.Apply(KubeResource.AuthorizationPolicy, Objects.Namespaced("shop", "deny-all"));
            s.HoldLists(KubeResource.Pod);
        });

        // Every other kind syncs; the held pod list keeps the initial sync (readiness) waiting.
        await h.WaitUntilAsync(() => h.Watcher.Status.Count(s => s.Synced) == KubeResource.MeshKinds.Length - 1, "all kinds but pods synced");
        Assert.False(h.Watcher.InitialSync.IsCompleted);
        Assert.False(h.StatusOf(KubeResource.Pod).Synced);

        h.Server.ReleaseLists();
        await h.Watcher.InitialSync.WaitAsync(Timeout);

        Assert.All(h.Watcher.Status, s => Assert.True(s.Synced));
        Assert.Equal(3, h.Watcher.Current.Objects.Count);
        KubeObject pod = h.Get("Pod", "shop", "web-1")!;
        Assert.Equal("v1", pod.ApiVersion);
        Assert.StartsWith("uid-", pod.Uid, StringComparison.Ordinal);
        Assert.NotEmpty(pod.ResourceVersion);
        Assert.Null(pod.File);
        Assert.Equal("ambient", h.Get("Namespace", "", "shop")!.Labels["istio.io/dataplane-mode"]);
        Assert.NotNull(h.Get("AuthorizationPolicy", "shop", "deny-all", "security.istio.io"));
        Assert.Equal(1, h.StatusOf(KubeResource.Pod).ObjectCount);
        Assert.NotNull(h.StatusOf(KubeResource.Pod).LastSync);
    }

    [Fact]
    public async Task List_items_get_the_kind_and_apiVersion_the_server_leaves_out_and_keep_every_field()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(seed: s =>
        {
            JsonObject pod = Objects.Pod("shop", "web-1");
            pod["spec"]!["someFutureField"] = new JsonObject { ["nested"] = new JsonArray(1, "two", true, null) };
            s.Apply(KubeResource.Pod, pod);
        });
        await h.Watcher.InitialSync.WaitAsync(Timeout);

        YamlMappingNode body = h.Get("Pod", "shop", "web-1")!.Body;
        Assert.Equal("v1", ((YamlScalarNode)body["apiVersion"]).Value);
        Assert.Equal("Pod", ((YamlScalarNode)body["kind"]).Value);
        var nested = (YamlSequenceNode)((YamlMappingNode)((YamlMappingNode)body["spec"])["someFutureField"])["nested"];
        Assert.Equal(["1", "two", "true", "null"], nested.Children.Select(n => ((YamlScalarNode)n).Value));
        Assert.Equal("8080", ((YamlScalarNode)((YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)body["spec"])["containers"])[0])["ports"])[0])["containerPort"]).Value);
    }

    [Fact]
    public async Task Added_modified_and_deleted_objects_flow_through()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(seed: s => s.Apply(KubeResource.Pod, Objects.Pod("shop", "web-1")));
        await h.Watcher.InitialSync.WaitAsync(Timeout);

        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "web-2", ip: "10.0.0.2"));
        await h.WaitForAsync(s => h.Get("Pod", "shop", "web-2") is not null, "web-2 added");

        string version = h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "web-2", ip: "10.0.0.2", labels: new() { ["app"] = "web" }));
        await h.WaitForAsync(_ => h.Get("Pod", "shop", "web-2")?.ResourceVersion == version, "web-2 modified");
        Assert.Equal("web", h.Get("Pod", "shop", "web-2")!.Labels["app"]);

        h.Server.Apply(KubeResource.HttpRoute, Objects.Namespaced("shop", "route"));
        await h.WaitForAsync(_ => h.Get("HTTPRoute", "shop", "route", "gateway.networking.k8s.io") is not null, "a CRD object added");

        h.Server.Delete(KubeResource.Pod, "shop", "web-1");
        await h.WaitForAsync(_ => h.Get("Pod", "shop", "web-1") is null, "web-1 deleted");
        Assert.NotNull(h.Get("Pod", "shop", "web-2"));
        Assert.Equal(1, h.Server.Requests.Count(r => r.Path == KubeResource.Pod.CollectionPath && !r.IsWatch));
    }

    [Fact]
    public async Task An_expired_watch_relists_recovering_an_object_added_in_the_gap_and_dropping_one_deleted_in_it()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(seed: s =>
        {
            s.Apply(KubeResource.Pod, Objects.Pod("shop", "stays"));
            s.Apply(KubeResource.Pod, Objects.Pod("shop", "deleted-in-gap"));
        });
        await h.SyncedAsync();
        long generation = h.Watcher.Current.Generation;

        // The watch cache falls behind: changes happen, their history is compacted, the watch gets ERROR 410.
        h.Server.HoldEvents();
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "added-in-gap"));
        h.Server.Delete(KubeResource.Pod, "shop", "deleted-in-gap");
        h.Server.Compact();
        h.Server.ExpireWatches(KubeResource.Pod);
        h.Server.ReleaseEvents();

        await h.WaitForAsync(_ => h.Get("Pod", "shop", "added-in-gap") is not null && h.Get("Pod", "shop", "deleted-in-gap") is null, "the re-list");
        Assert.NotNull(h.Get("Pod", "shop", "stays"));
        Assert.True(h.Watcher.Current.Generation > generation);
        Assert.Equal(2, h.StatusOf(KubeResource.Pod).Lists);
        // The re-list is a consistent read (no resourceVersion), the first list came from the watch cache (0).
        RecordedRequest[] lists = [.. h.Server.Requests.Where(r => r.Path == KubeResource.Pod.CollectionPath && !r.IsWatch)];
        Assert.Equal("0", lists[0].ResourceVersion);
        Assert.Null(lists[1].ResourceVersion);
        // And the watch resumes from the re-list's version: a later change still flows.
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "after"));
        await h.WaitForAsync(_ => h.Get("Pod", "shop", "after") is not null, "a change after the re-list");
    }

    [Fact]
    public async Task A_watch_from_a_compacted_version_gets_410_and_relists()
    {
        // The server answers a watch from a version older than its history with ERROR 410 at once.
        await using WatcherHarness h = await WatcherHarness.StartSyncedAsync(null, "a");

        h.Server.HoldEvents();
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "b"));
        h.Server.Compact();
        h.Server.EndWatches(KubeResource.Pod);
        h.Server.ReleaseEvents();

        await h.WaitForAsync(_ => h.Get("Pod", "shop", "b") is not null, "pod b after the re-list");
        Assert.Equal(2, h.StatusOf(KubeResource.Pod).Lists);
    }

    [Fact]
    public async Task Http_410_on_a_list_and_on_a_watch_request_both_lead_to_a_fresh_list()
    {
        await using WatcherHarness h = await WatcherHarness.StartSyncedAsync(null, "a");

        // Next watch request: HTTP 410. The re-list after it: HTTP 410 again. Then the list succeeds.
        h.Server.FailNext(KubeResource.Pod, 410, watch: true);
        h.Server.FailNext(KubeResource.Pod, 410);
        h.Server.HoldEvents();
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "b"));
        h.Server.Delete(KubeResource.Pod, "shop", "a");
        h.Server.EndWatches(KubeResource.Pod);

        await h.WaitForAsync(_ => h.Get("Pod", "shop", "b") is not null && h.Get("Pod", "shop", "a") is null, "the state after the re-list");
        Assert.Equal(3, h.Server.Requests.Count(r => r.Path == KubeResource.Pod.CollectionPath && !r.IsWatch));
        Assert.Null(h.StatusOf(KubeResource.Pod).Error);
    }

    [Fact]
    public async Task Lists_are_paged_and_an_expired_continue_token_restarts_the_list()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(
            options: k => WatcherHarness.PodsOnly(k) with { ListPageSize = 2 },
            seed: s =>
            {
                for (int i = 0; i < 5; i++)
                {
                    s.Apply(KubeResource.Pod, Objects.Pod("shop", $"web-{i}"));
                }
                s.ExpireNextContinue();
            });
        await h.Watcher.InitialSync.WaitAsync(Timeout);

        Assert.Equal(5, h.Watcher.Current.Objects.Count);
        RecordedRequest[] lists = [.. h.Server.Requests.Where(r => !r.IsWatch)];
        // Page 1, page 2 refused (410: token expired), then a full paged list again: 1 + 1 + 3 requests.
        Assert.Equal(5, lists.Length);
        Assert.All(lists, r => Assert.Equal("2", r.Query["limit"]));
        Assert.All(lists.Where(r => r.Query.ContainsKey("continue")), r => Assert.False(r.Query.ContainsKey("resourceVersion")));
        Assert.Equal(3, lists.Count(r => r.Query.ContainsKey("continue")));
    }

    [Fact]
    public async Task A_missing_crd_is_skipped_logged_once_and_picked_up_when_installed()
    {
        KubeResource[] installed = [.. KubeResource.MeshKinds.Where(r => r != KubeResource.HttpRoute)];
        await using WatcherHarness h = await WatcherHarness.StartAsync(installed, seed: s => s.Apply(KubeResource.Pod, Objects.Pod("shop", "a")));

        await h.Watcher.InitialSync.WaitAsync(Timeout);
        KubeKindStatus routes = h.StatusOf(KubeResource.HttpRoute);
        Assert.True(routes.Missing);
        Assert.True(routes.Synced);
        Assert.Null(routes.Error);
        Assert.NotNull(h.Get("Pod", "shop", "a"));

        // Retried (every 200 ms here) without logging again.
        await h.Server.WaitForRequestAsync(r => r.Path == KubeResource.HttpRoute.CollectionPath, Timeout);
        int requests = h.Server.Requests.Count(r => r.Path == KubeResource.HttpRoute.CollectionPath);
        await h.WaitUntilAsync(() => h.Server.Requests.Count(r => r.Path == KubeResource.HttpRoute.CollectionPath) >= requests + 2, "two more retries");
        Assert.Equal(1, h.Logs.Count(4303));

        h.Server.Install(KubeResource.HttpRoute);
        h.Server.Apply(KubeResource.HttpRoute, Objects.Namespaced("shop", "route"));
        await h.WaitForAsync(_ => h.Get("HTTPRoute", "shop", "route", "gateway.networking.k8s.io") is not null, "the route once its CRD exists");
        Assert.False(h.StatusOf(KubeResource.HttpRoute).Missing);

        // The CRD removed again: its objects go with it.
        h.Server.Uninstall(KubeResource.HttpRoute);
        await h.WaitForAsync(_ => h.Get("HTTPRoute", "shop", "route", "gateway.networking.k8s.io") is null, "the route gone with its CRD");
        Assert.True(h.StatusOf(KubeResource.HttpRoute).Missing);
    }

    [Fact]
    public async Task With_the_server_gone_the_state_is_kept_and_synced_and_it_resumes_when_back()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(seed: s =>
        {
            s.Apply(KubeResource.Pod, Objects.Pod("shop", "a"));
            s.Apply(KubeResource.Pod, Objects.Pod("shop", "deleted-while-down"));
        });
        await h.SyncedAsync();

        await h.Server.StopAsync();
        await h.WaitUntilAsync(() => h.StatusOf(KubeResource.Pod).Error is not null, "the pod kind reporting the outage");
        Assert.Equal(2, h.Watcher.Current.Objects.Count);
        Assert.All(h.Watcher.Status, s => Assert.True(s.Synced));
        Assert.True(h.Watcher.InitialSync.IsCompletedSuccessfully);
        // It keeps trying (with back-off) and keeps the objects while it fails.
        await h.WaitUntilAsync(() => h.StatusOf(KubeResource.Pod).Failures >= 3, "a few failed attempts");
        Assert.NotNull(h.Get("Pod", "shop", "deleted-while-down"));

        // Changes while down, history compacted (the server restarted with the same etcd).
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "added-while-down"));
        h.Server.Delete(KubeResource.Pod, "shop", "deleted-while-down");
        h.Server.Compact();
        await h.Server.RestartAsync();

        await h.WaitForAsync(_ => h.Get("Pod", "shop", "added-while-down") is not null && h.Get("Pod", "shop", "deleted-while-down") is null, "the state after the restart");
        await h.WaitUntilAsync(() => h.StatusOf(KubeResource.Pod).Error is null, "the error cleared");
        Assert.Contains(h.Logs.Lines, l => l.EventId == 4306);
    }

    [Fact]
    public async Task A_server_restart_without_compaction_resumes_the_watch_without_a_list()
    {
        await using WatcherHarness h = await WatcherHarness.StartSyncedAsync(WatcherHarness.PodsOnly, "a");

        await h.Server.StopAsync();
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "b"));
        await h.Server.RestartAsync();

        await h.WaitForAsync(_ => h.Get("Pod", "shop", "b") is not null, "pod b from the resumed watch");
        Assert.Equal(1, h.Server.Requests.Count(r => !r.IsWatch));
    }

    [Fact]
    public async Task A_bookmark_advances_the_version_the_next_watch_starts_from()
    {
        await using WatcherHarness h = await WatcherHarness.StartSyncedAsync(null, "a");
        RecordedRequest firstWatch = h.Server.Requests.Single(r => r.IsWatch && r.Path == KubeResource.Pod.CollectionPath);
        Assert.Equal("true", firstWatch.Query["allowWatchBookmarks"]);

        // Other kinds move the cluster's version on; the pod watch only hears a bookmark.
        h.Server.Apply(KubeResource.Service, Objects.Namespaced("shop", "web"));
        h.Server.Apply(KubeResource.Service, Objects.Namespaced("shop", "db"));
        string bookmark = h.Server.SendBookmark(KubeResource.Pod);
        Assert.NotEqual(firstWatch.ResourceVersion, bookmark);
        await h.WaitUntilAsync(() => h.StatusOf(KubeResource.Pod).ResourceVersion == bookmark, "the bookmark's version");

        h.Server.EndWatches(KubeResource.Pod);
        RecordedRequest next = await h.Server.WaitForRequestAsync(r => r.IsWatch && r.Path == KubeResource.Pod.CollectionPath && r != firstWatch, Timeout);
        Assert.Equal(bookmark, next.ResourceVersion);
        Assert.Equal(1, h.Server.Requests.Count(r => r.Path == KubeResource.Pod.CollectionPath && !r.IsWatch));
    }

    [Fact]
    public async Task A_watch_the_server_ends_is_resumed_from_the_last_version_with_a_spread_timeout()
    {
        await using WatcherHarness h = await WatcherHarness.StartSyncedAsync(null, "a");
        string version = h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "b"));
        await h.WaitForAsync(_ => h.Get("Pod", "shop", "b") is not null, "pod b");

        h.Server.EndWatches(KubeResource.Pod);
        RecordedRequest next = await h.Server.WaitForRequestAsync(r => r.IsWatch && r.Path == KubeResource.Pod.CollectionPath && r.ResourceVersion == version, Timeout);

        int timeoutSeconds = int.Parse(next.Query["timeoutSeconds"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(timeoutSeconds, 300, 600);
        Assert.Equal(1, h.StatusOf(KubeResource.Pod).Lists);
        Assert.Equal(0, h.StatusOf(KubeResource.Pod).Failures);
    }

    [Fact]
    public async Task A_watch_error_other_than_410_backs_off_and_resumes_without_a_list()
    {
        await using WatcherHarness h = await WatcherHarness.StartSyncedAsync(null, "a");

        h.Server.SendError(KubeResource.Pod, 500, "InternalError");
        await h.WaitUntilAsync(() => h.StatusOf(KubeResource.Pod).Failures == 1, "the failure recorded");
        Assert.Contains("500", h.StatusOf(KubeResource.Pod).Error ?? "(cleared already)", StringComparison.Ordinal);
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "b"));
        await h.WaitForAsync(_ => h.Get("Pod", "shop", "b") is not null, "pod b after the retry");
        Assert.Equal(1, h.StatusOf(KubeResource.Pod).Lists);
    }

    [Fact]
    public async Task A_burst_of_changes_is_one_or_a_few_notifications()
    {
        // The quiet period is far longer than the gaps in the burst, so on any machine the burst is one burst;
        // without coalescing each of the 20 separate deliveries would be a notification.
        await using WatcherHarness h = await WatcherHarness.StartAsync(options: k => WatcherHarness.PodsOnly(k) with
        {
            CoalesceDelay = TimeSpan.FromMilliseconds(500),
            MaxCoalesceDelay = TimeSpan.FromSeconds(20),
        });
        await h.SyncedAsync();
        int before = h.Notifications;

        for (int batch = 0; batch < 20; batch++)
        {
            for (int i = 0; i < 10; i++)
            {
                h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", $"web-{batch}-{i}"));
            }
            await Task.Delay(10);
        }

        await h.WaitForAsync(s => s.Objects.Count == 200, "200 pods");
        await h.WaitUntilAsync(() => h.Notifications > before, "a notification");
        Assert.InRange(h.Notifications - before, 1, 5);
    }

    [Fact]
    public async Task A_relist_that_finds_nothing_new_changes_nothing_and_notifies_nobody()
    {
        await using WatcherHarness h = await WatcherHarness.StartSyncedAsync(WatcherHarness.PodsOnly, "a");
        await h.WaitUntilAsync(() => h.Notifications == 1, "the notification of the first list");
        KubeObjectSet before = h.Watcher.Current;

        h.Server.Compact();
        h.Server.ExpireWatches();
        await h.WaitUntilAsync(() => h.StatusOf(KubeResource.Pod).Lists == 2, "the re-list");
        await h.WaitUntilAsync(() => h.Server.OpenWatches(KubeResource.Pod) == 1, "the pod watch open again");

        Assert.Same(before, h.Watcher.Current);
        Assert.Equal(1, h.Notifications);
    }

    [Fact]
    public async Task A_throwing_change_handler_is_logged_and_later_changes_still_notify()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(options: WatcherHarness.PodsOnly);
        h.Watcher.Changed += _ => throw new InvalidOperationException("handler bug");
        await h.Watcher.InitialSync.WaitAsync(Timeout);

        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "a"));
        await h.WaitUntilAsync(() => h.Logs.Count(4312) >= 1, "the handler failure logged");
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "b"));
        await h.WaitUntilAsync(() => h.Logs.Count(4312) >= 2, "a second notification");
        Assert.NotNull(h.Get("Pod", "shop", "b"));
    }

    [Fact]
    public async Task Selectors_narrow_a_kind_and_an_object_leaving_the_selection_goes_away()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(
            options: k => WatcherHarness.TestOptions(k, [new KubeWatch(KubeResource.Pod, FieldSelector: "spec.nodeName=node-a"), new KubeWatch(KubeResource.Service, LabelSelector: "mesh=on")]),
            seed: s =>
            {
                s.Apply(KubeResource.Pod, Objects.Pod("shop", "here", node: "node-a"));
                s.Apply(KubeResource.Pod, Objects.Pod("shop", "there", node: "node-b"));
                JsonObject svc = Objects.Namespaced("shop", "meshed");
                svc["metadata"]!["labels"] = new JsonObject { ["mesh"] = "on" };
                s.Apply(KubeResource.Service, svc);
                s.Apply(KubeResource.Service, Objects.Namespaced("shop", "plain"));
            });
        await h.Watcher.InitialSync.WaitAsync(Timeout);

        Assert.NotNull(h.Get("Pod", "shop", "here"));
        Assert.Null(h.Get("Pod", "shop", "there"));
        Assert.NotNull(h.Get("Service", "shop", "meshed"));
        Assert.Null(h.Get("Service", "shop", "plain"));
        Assert.All(h.Server.Requests.Where(r => r.Path == KubeResource.Pod.CollectionPath), r => Assert.Equal("spec.nodeName=node-a", r.Query["fieldSelector"]));
        await h.WaitUntilAsync(() => h.Server.OpenWatches(KubeResource.Service) == 1, "the service watch open");

        // A pending pod scheduled onto this node enters; a service losing its label leaves.
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "scheduled", node: null));
        h.Server.Apply(KubeResource.Pod, Objects.Pod("shop", "scheduled", node: "node-a"));
        h.Server.Apply(KubeResource.Service, Objects.Namespaced("shop", "meshed"));
        await h.WaitForAsync(_ => h.Get("Pod", "shop", "scheduled") is not null && h.Get("Service", "shop", "meshed") is null, "the selection changes");
    }

    [Fact]
    public async Task Stop_ends_every_loop_and_cancels_a_pending_initial_sync()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(seed: s => s.HoldLists(KubeResource.Pod));
        await h.Server.WaitForRequestAsync(r => r.Path == KubeResource.Pod.CollectionPath, Timeout);

        await h.Watcher.StopAsync(CancellationToken.None).WaitAsync(Timeout);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => h.Watcher.InitialSync.WaitAsync(Timeout));
        h.Server.ReleaseLists();
    }

    [Fact]
    public async Task An_unreachable_server_at_start_keeps_the_initial_sync_pending_and_reports_the_error()
    {
        await using WatcherHarness h = await WatcherHarness.StartAsync(options: k => WatcherHarness.TestOptions(k, CoreKinds.Select(r => new KubeWatch(r))), startWatcher: false);
        await h.Server.StopAsync();
        await h.Watcher.StartAsync(CancellationToken.None).WaitAsync(Timeout);

        await h.WaitUntilAsync(() => h.Watcher.Status.All(s => s.Failures >= 2), "every kind failing");
        Assert.False(h.Watcher.InitialSync.IsCompleted);
        Assert.All(h.Watcher.Status, s => Assert.False(s.Synced));
        Assert.All(h.Watcher.Status, s => Assert.NotNull(s.Error));

        await h.Server.RestartAsync();
        await h.Watcher.InitialSync.WaitAsync(Timeout);
    }
}
