using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.Api;
using Ambient.Mesh.Tests.Identity;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Tests.Kubernetes.Api.Support;

/// <summary>
/// A <see cref="FakeKubeApiServer"/>, a kubeconfig for it and a <see cref="KubernetesApiWatcher"/> with short
/// retry times, torn down together. Every wait has a timeout.
/// </summary>
internal sealed class WatcherHarness : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly TempDir _dir = new();
    private int _notifications;

    private WatcherHarness(FakeKubeApiServer server)
    {
        Server = server;
    }

    public FakeKubeApiServer Server { get; }

    public KubernetesApiWatcher Watcher { get; private set; } = null!;

    public CollectingLoggerProvider Logs { get; } = new();

    public string Kubeconfig { get; private set; } = "";

    /// <summary>How many times <see cref="KubernetesApiWatcher.Changed"/> fired.</summary>
    public int Notifications => Volatile.Read(ref _notifications);

    /// <summary>Options fit for tests: quick retries, the given kinds (default: all mesh kinds).</summary>
    public static KubernetesApiOptions TestOptions(string kubeconfig, IEnumerable<KubeWatch>? watches = null) => new()
    {
        KubeconfigPath = kubeconfig,
        Watches = watches is null ? new KubernetesApiOptions().Watches : [.. watches],
        InitialBackoff = TimeSpan.FromMilliseconds(50),
        MaxBackoff = TimeSpan.FromMilliseconds(300),
        MissingKindRetry = TimeSpan.FromMilliseconds(200),
        CoalesceDelay = TimeSpan.FromMilliseconds(75),
    };

    /// <summary><see cref="TestOptions"/> watching pods only.</summary>
    public static KubernetesApiOptions PodsOnly(string kubeconfig) => TestOptions(kubeconfig, [new KubeWatch(KubeResource.Pod)]);

    /// <summary>Waits for the initial sync and for the pod watch to be open (so the next change is a watch event).</summary>
    public async Task SyncedAsync()
    {
        await Watcher.InitialSync.WaitAsync(Timeout);
        await WaitUntilAsync(() => Server.OpenWatches(KubeResource.Pod) == 1, "the pod watch open");
    }

    /// <summary>Starts with the given pods in namespace "shop" and waits until synced with the pod watch open.</summary>
    public static async Task<WatcherHarness> StartSyncedAsync(Func<string, KubernetesApiOptions>? options, params string[] pods)
    {
        WatcherHarness harness = await StartAsync(options: options, seed: s =>
        {
            foreach (string pod in pods)
            {
                s.Apply(KubeResource.Pod, Objects.Pod("shop", pod));
            }
        });
        try
        {
            await harness.SyncedAsync();
            return harness;
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the server (with <paramref name="installed"/> kinds) and, unless told not to, the watcher.</summary>
    public static async Task<WatcherHarness> StartAsync(
        IEnumerable<KubeResource>? installed = null,
        Func<string, KubernetesApiOptions>? options = null,
        Action<FakeKubeApiServer>? seed = null,
        bool startWatcher = true)
    {
        FakeKubeApiServer server = await FakeKubeApiServer.StartAsync(installed);
        var harness = new WatcherHarness(server);
        try
        {
            seed?.Invoke(server);
            harness.Kubeconfig = TestKubeconfig.Write(harness._dir.Path, server.Url);
            harness.Watcher = new KubernetesApiWatcher((options ?? (k => TestOptions(k)))(harness.Kubeconfig), harness.Logs.Factory);
            harness.Watcher.Changed += _ => Interlocked.Increment(ref harness._notifications);
            if (startWatcher)
            {
                await harness.Watcher.StartAsync(CancellationToken.None).WaitAsync(Timeout);
            }
            return harness;
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
    }

    public KubeObject? Get(string kind, string ns, string name, string group = "") =>
        Watcher.Current.Objects.GetValueOrDefault(new KubeObjectKey(group, kind, ns, name));

    /// <summary>Waits until <paramref name="condition"/> holds for the watcher's current set (checked on each change).</summary>
    public Task WaitForAsync(Func<KubeObjectSet, bool> condition, string what) =>
        WaitUntilAsync(() => condition(Watcher.Current), what);

    /// <summary>Waits until <paramref name="condition"/> holds, checking after each change notification and every 20 ms.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        using var cts = new CancellationTokenSource(Timeout);
        var changed = new SemaphoreSlim(0);
        void OnChanged(KubeObjectSet _) => changed.Release();
        Watcher.Changed += OnChanged;
        try
        {
            while (!condition())
            {
                try
                {
                    await changed.WaitAsync(TimeSpan.FromMilliseconds(20), cts.Token);
                }
                catch (OperationCanceledException)
                {
                    throw new TimeoutException($"timed out waiting for {what}; status: {string.Join("; ", Watcher.Status.Select(s => $"{s.Watch} synced={s.Synced} missing={s.Missing} n={s.ObjectCount} rv={s.ResourceVersion} error={s.Error}"))}");
                }
            }
        }
        finally
        {
            Watcher.Changed -= OnChanged;
        }
    }

    public KubeKindStatus StatusOf(KubeResource resource) => Watcher.Status.Single(s => s.Watch.Resource == resource);

    public async ValueTask DisposeAsync()
    {
        if (Watcher is not null)
        {
            await Watcher.StopAsync(CancellationToken.None).WaitAsync(Timeout);
        }
        await Server.DisposeAsync();
        Logs.Dispose();
        _dir.Dispose();
    }
}

/// <summary>Objects as kubectl would create them.</summary>
internal static class Objects
{
    public static JsonObject Pod(string ns, string name, string? node = "node-a", string? ip = "10.0.0.1", Dictionary<string, string>? labels = null)
    {
        var metadata = new JsonObject { ["name"] = name, ["namespace"] = ns };
        if (labels is not null)
        {
            var l = new JsonObject();
            foreach ((string k, string v) in labels)
            {
                l[k] = v;
            }
            metadata["labels"] = l;
        }
        var spec = new JsonObject
        {
            ["serviceAccountName"] = "default",
            ["containers"] = new JsonArray(new JsonObject { ["name"] = "app", ["image"] = "app:1", ["ports"] = new JsonArray(new JsonObject { ["containerPort"] = 8080 }) }),
        };
        if (node is not null)
        {
            spec["nodeName"] = node;
        }
        var status = new JsonObject { ["phase"] = "Running" };
        if (ip is not null)
        {
            status["podIP"] = ip;
            status["podIPs"] = new JsonArray(new JsonObject { ["ip"] = ip });
        }
        return new JsonObject { ["metadata"] = metadata, ["spec"] = spec, ["status"] = status };
    }

    public static JsonObject Namespaced(string ns, string name, JsonObject? spec = null) => new()
    {
        ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns },
        ["spec"] = spec ?? new JsonObject(),
    };

    public static JsonObject Namespace(string name, string? dataplaneMode = null)
    {
        var metadata = new JsonObject { ["name"] = name };
        if (dataplaneMode is not null)
        {
            metadata["labels"] = new JsonObject { ["istio.io/dataplane-mode"] = dataplaneMode };
        }
        return new JsonObject { ["metadata"] = metadata };
    }
}

/// <summary>Collects log lines, for assertions on what was logged (and how often).</summary>
internal sealed class CollectingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, int EventId, string Message)> _lines = new();

    public CollectingLoggerProvider()
    {
        Factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(this));
    }

    public ILoggerFactory Factory { get; }

    public IReadOnlyList<(LogLevel Level, int EventId, string Message)> Lines => [.. _lines];

    public int Count(int eventId) => _lines.Count(l => l.EventId == eventId);

    public ILogger CreateLogger(string categoryName) => new Collector(_lines);

    public void Dispose() => Factory.Dispose();

    private sealed class Collector(ConcurrentQueue<(LogLevel, int, string)> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (lines.Count < 20000)
            {
                lines.Enqueue((logLevel, eventId.Id, formatter(state, exception)));
            }
        }
    }
}
