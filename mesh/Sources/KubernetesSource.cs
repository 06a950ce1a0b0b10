using System.Collections.Immutable;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.Api;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Sources;

/// <summary>
/// The live Kubernetes API as a mesh source: the <see cref="KubernetesApiWatcher"/> lists and watches the mesh kinds;
/// after each batch of changes the whole object set goes through the one <see cref="KubeTranslator"/> the file source
/// uses, and the result replaces this source's state in the store (which turns it into the changes of the entries
/// that differ). Readiness waits for the watcher's initial sync; while the API server is unreachable the last state
/// stays and the agent stays ready.
/// </summary>
/// <remarks>
/// An object the translator refuses (a bad field) is left out and named in the source's status and the log; every
/// other object still applies. Errors are logged when they change, not on every batch.
/// </remarks>
public sealed partial class KubernetesSource : IHostedService, IAsyncDisposable
{
    /// <summary>Below manifest files (40) and the config file (50): a local file can override what the cluster says.</summary>
    public const int DefaultPrecedence = 30;

    private readonly KubernetesApiWatcher _watcher;
    private readonly KubeTranslator _translator;
    private readonly MeshSource _source;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private long _translatedGeneration = -1;
    private string _lastErrors = "";
    private CancellationTokenSource? _stopping;
    private Task _initial = Task.CompletedTask;

    public KubernetesSource(MeshStore store, KubernetesApiWatcher watcher, KubeTranslator translator, ILogger logger, int precedence = DefaultPrecedence)
    {
        _watcher = watcher;
        _translator = translator;
        _logger = logger;
        _source = store.AddSource("kubernetes", precedence);
        _watcher.Changed += OnChanged;
    }

    public MeshSource Source => _source;

    /// <summary>Each watched kind's list/watch state, for /config_dump.</summary>
    public ImmutableArray<KubeKindStatus> Kinds => _watcher.Status;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _stopping = new CancellationTokenSource();
        await _watcher.StartAsync(cancellationToken).ConfigureAwait(false);
        Log.Started(_logger, _watcher.Server?.ToString() ?? "(unknown)", _watcher.Origin ?? "");
        _initial = CompleteInitialSyncAsync(_stopping.Token);
    }

    /// <summary>Publishes the first full state once every kind has listed, then marks the source synced.</summary>
    private async Task CompleteInitialSyncAsync(CancellationToken ct)
    {
        try
        {
            await _watcher.InitialSync.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        Publish(_watcher.Current);
        _source.MarkSynced();
    }

    private void OnChanged(KubeObjectSet set)
    {
        // Before the initial sync a partial set (some kinds listed, others not yet) would withdraw what is not listed
        // yet; the first publication waits for every kind.
        if (_watcher.InitialSync.IsCompletedSuccessfully)
        {
            Publish(set);
        }
    }

    private void Publish(KubeObjectSet set)
    {
        lock (_gate)
        {
            if (set.Generation == _translatedGeneration)
            {
                return;
            }
            _translatedGeneration = set.Generation;
            TranslationResult result;
            try
            {
                result = _translator.Translate(set.Objects.Values);
            }
            catch (Exception ex)
            {
                // A translator bug must not stop the source: keep the last state and say so.
                _source.ReportError($"translation failed, keeping the last state: {ex.Message}");
                Log.TranslationFailed(_logger, ex);
                return;
            }
            _source.Replace(result.Resources);
            string errors = string.Join("\n  ", result.Errors);
            if (result.Errors.IsEmpty)
            {
                _source.ReportSuccess();
            }
            else
            {
                _source.ReportError($"{result.Errors.Length} objects refused (the rest applied)", result.Errors.Select(e => e.ToString()));
            }
            if (errors != _lastErrors)
            {
                _lastErrors = errors;
                if (!result.Errors.IsEmpty)
                {
                    Log.Refused(_logger, result.Errors.Length, errors);
                }
            }
            var r = result.Resources;
            Log.Translated(_logger, set.Objects.Count, r.Workloads.Length, r.Services.Length, r.Policies.Length, r.Objects.Length);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopping is not null)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }
        await _initial.ConfigureAwait(false);
        await _watcher.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        _watcher.Changed -= OnChanged;
        await _watcher.DisposeAsync().ConfigureAwait(false);
        _stopping?.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "kubernetes source: watching {Server} ({Origin})")]
        public static partial void Started(ILogger logger, string server, string origin);

        [LoggerMessage(EventId = 121, Level = LogLevel.Debug, Message = "kubernetes source: {Objects} objects -> {Workloads} workloads, {Services} services, {Policies} policies, {MeshObjects} other mesh objects")]
        public static partial void Translated(ILogger logger, int objects, int workloads, int services, int policies, int meshObjects);

        [LoggerMessage(EventId = 122, Level = LogLevel.Warning, Message = "kubernetes source: {Count} objects refused, the rest applied:\n  {Errors}")]
        public static partial void Refused(ILogger logger, int count, string errors);

        [LoggerMessage(EventId = 123, Level = LogLevel.Error, Message = "kubernetes source: translation failed, keeping the last state")]
        public static partial void TranslationFailed(ILogger logger, Exception exception);
    }
}
