using Ambient.Mesh.Kubernetes.Api;
using Ambient.Mesh.Tests.Identity;
using Ambient.Mesh.Tests.Kubernetes.Api.Support;

namespace Ambient.Mesh.Tests.Kubernetes.Api;

/// <summary>The kubeconfig is honoured: server CA, client certificate, bearer token; and a bad one fails the start clearly.</summary>
public sealed class KubeConnectionTests
{
    private static readonly TimeSpan Timeout = WatcherHarness.Timeout;

    private static async Task<RecordedRequest> SyncOverTlsAsync(Func<Uri, string> kubeconfigFor, TestClusterPki pki, Action<FakeKubeApiServer>? seed = null)
    {
        await using FakeKubeApiServer server = await FakeKubeApiServer.StartAsync(serverCertificate: pki.Server);
        seed?.Invoke(server);
        using var logs = new CollectingLoggerProvider();
        await using var watcher = new KubernetesApiWatcher(WatcherHarness.PodsOnly(kubeconfigFor(server.Url)), logs.Factory);
        await watcher.StartAsync(CancellationToken.None).WaitAsync(Timeout);
        await watcher.InitialSync.WaitAsync(Timeout);
        Assert.Equal(server.Url.GetLeftPart(UriPartial.Authority) + "/", watcher.Server!.ToString());
        return server.Requests.First();
    }

    [Fact]
    public async Task Https_with_the_cluster_ca_and_a_client_certificate()
    {
        using var pki = new TestClusterPki();
        using var dir = new TempDir();

        RecordedRequest request = await SyncOverTlsAsync(url => TestKubeconfig.Write(dir.Path, url, pki, clientCertificate: true), pki,
            s => s.Apply(KubeResource.Pod, Objects.Pod("shop", "a")));

        Assert.Equal(pki.Client.Subject, request.ClientCertificate);
        Assert.Equal("", request.Authorization);
        // Over TLS the watches share HTTP/2 connections.
        Assert.Equal("HTTP/2", request.Protocol);
    }

    [Fact]
    public async Task Https_with_a_bearer_token()
    {
        using var pki = new TestClusterPki();
        using var dir = new TempDir();

        RecordedRequest request = await SyncOverTlsAsync(url => TestKubeconfig.Write(dir.Path, url, pki, token: "s3cr3t-token"), pki);

        Assert.Equal("Bearer s3cr3t-token", request.Authorization);
        Assert.Null(request.ClientCertificate);
    }

    [Fact]
    public async Task A_server_certificate_from_another_ca_is_refused()
    {
        using var pki = new TestClusterPki();
        using var other = new TestClusterPki();
        using var dir = new TempDir();
        await using FakeKubeApiServer server = await FakeKubeApiServer.StartAsync(serverCertificate: pki.Server);
        string kubeconfig = TestKubeconfig.Write(dir.Path, server.Url, other, token: "s3cr3t-token");
        await using var watcher = new KubernetesApiWatcher(WatcherHarness.PodsOnly(kubeconfig));

        await watcher.StartAsync(CancellationToken.None).WaitAsync(Timeout);

        using var cts = new CancellationTokenSource(Timeout);
        while (watcher.Status[0].Failures < 2)
        {
            await Task.Delay(20, cts.Token);
        }
        Assert.False(watcher.InitialSync.IsCompleted);
        Assert.Empty(server.Requests);
        Assert.NotNull(watcher.Status[0].Error);
    }

    [Fact]
    public async Task A_token_is_not_sent_over_plain_http()
    {
        using var dir = new TempDir();
        await using FakeKubeApiServer server = await FakeKubeApiServer.StartAsync();
        string kubeconfig = TestKubeconfig.Write(dir.Path, server.Url, token: "s3cr3t-token");
        using var logs = new CollectingLoggerProvider();
        await using var watcher = new KubernetesApiWatcher(WatcherHarness.PodsOnly(kubeconfig), logs.Factory);

        await watcher.StartAsync(CancellationToken.None).WaitAsync(Timeout);
        await watcher.InitialSync.WaitAsync(Timeout);

        Assert.All(server.Requests, r => Assert.Equal("", r.Authorization));
        Assert.Equal(1, logs.Count(4301));
    }

    [Fact]
    public async Task A_missing_or_broken_kubeconfig_fails_the_start_naming_the_file()
    {
        using var dir = new TempDir();
        string missing = dir.File("nope");
        await using var a = new KubernetesApiWatcher(WatcherHarness.TestOptions(missing));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => a.StartAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);

        string broken = dir.File("broken");
        await File.WriteAllTextAsync(broken, "apiVersion: v1\nkind: Config\nclusters: [ this is : not valid");
        await using var b = new KubernetesApiWatcher(WatcherHarness.TestOptions(broken));
        e = await Assert.ThrowsAsync<InvalidOperationException>(() => b.StartAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Contains(broken, e.Message, StringComparison.Ordinal);

        string noContext = TestKubeconfig.Write(dir.Path, new Uri("http://127.0.0.1:1"));
        await using var c = new KubernetesApiWatcher(WatcherHarness.TestOptions(noContext) with { Context = "elsewhere" });
        e = await Assert.ThrowsAsync<InvalidOperationException>(() => c.StartAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Contains(noContext, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_path_the_kubeconfig_variable_is_used()
    {
        using var dir = new TempDir();
        await using FakeKubeApiServer server = await FakeKubeApiServer.StartAsync();
        string kubeconfig = TestKubeconfig.Write(dir.Path, server.Url);
        var options = WatcherHarness.PodsOnly(kubeconfig) with { KubeconfigPath = null };
        await using var watcher = new KubernetesApiWatcher(options, null, TimeProvider.System, name => name == "KUBECONFIG" ? kubeconfig : null);

        await watcher.StartAsync(CancellationToken.None).WaitAsync(Timeout);
        await watcher.InitialSync.WaitAsync(Timeout);

        Assert.Contains("KUBECONFIG", watcher.Origin, StringComparison.Ordinal);
        Assert.Single(server.Requests, r => !r.IsWatch);
    }

    [Fact]
    public void Options_that_cannot_work_are_refused_at_construction()
    {
        var pods = new KubeWatch(KubeResource.Pod);
        Assert.Throws<ArgumentException>(() => new KubernetesApiWatcher(new KubernetesApiOptions { Watches = [pods, pods with { FieldSelector = "spec.nodeName=a" }] }));
        Assert.Throws<ArgumentException>(() => new KubernetesApiWatcher(new KubernetesApiOptions { Watches = [] }));
        Assert.Throws<ArgumentException>(() => new KubernetesApiWatcher(new KubernetesApiOptions { MaxBackoff = TimeSpan.Zero }));
    }
}
