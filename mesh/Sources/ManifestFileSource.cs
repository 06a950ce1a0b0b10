using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Sources;

/// <summary>
/// Kubernetes and Istio manifests from files (<c>--manifests PATH</c>, config key <c>manifests:</c>) as a mesh source:
/// the same YAML a user would <c>kubectl apply</c>, read by <see cref="ManifestReader"/> and translated by the one
/// <see cref="KubeTranslator"/> the API source uses too. Watched: a valid edit replaces the source's state; an edit
/// with any error is refused whole (every error logged with its file and line) and the last good state stays.
/// </summary>
/// <remarks>
/// <para>A set of files that yields no object at all while the last good state had some is refused too: a truncated
/// or half-copied file would otherwise withdraw every workload and policy at once and fail open (issue 13).</para>
/// <para>Changes are read only once the files have settled (names, sizes and modification times unchanged for
/// <see cref="SettlePeriod"/>), like the config file; write manifests atomically (write, then rename) all the same.</para>
/// </remarks>
public sealed partial class ManifestFileSource : IDisposable
{
    private readonly MeshSource _source;
    private readonly ImmutableArray<string> _paths;
    private readonly KubeTranslator _translator;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private Timer? _poll;
    private string _applied = "";
    private string _seen = "";
    private long _seenAt;
    private int _lastGoodCount;
    private bool _disposed;

    public ManifestFileSource(MeshStore store, IEnumerable<string> paths, KubeTranslator translator, ILogger logger, int precedence = DefaultPrecedence)
    {
        _paths = [.. paths.Select(Path.GetFullPath)];
        _translator = translator;
        _logger = logger;
        _source = store.AddSource($"manifests:{string.Join(",", _paths)}", precedence);
    }

    /// <summary>Below the config file's own entries (50), above the Kubernetes API (30).</summary>
    public const int DefaultPrecedence = 40;

    public string Name => _source.Name;

    public TimeSpan SettlePeriod { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Raised after each reload attempt: true when applied, false when refused.</summary>
    public event Action<bool>? Reloaded;

    /// <summary>
    /// Reads and translates every manifest now. At start-up the caller refuses to start on errors (they are returned);
    /// when there are none the state is published and the source is synced.
    /// </summary>
    public ImmutableArray<ConfigError> Load()
    {
        lock (_gate)
        {
            _applied = Fingerprint();
            return ReloadLocked(initial: true);
        }
    }

    /// <summary>Starts watching (after a successful <see cref="Load"/>).</summary>
    public void Start()
    {
        lock (_gate)
        {
            foreach (string dir in _paths.Select(p => Directory.Exists(p) ? p : Path.GetDirectoryName(p)!).Distinct(StringComparer.Ordinal))
            {
                if (!Directory.Exists(dir))
                {
                    continue;
                }
                var w = new FileSystemWatcher(dir) { IncludeSubdirectories = false, EnableRaisingEvents = true };
                w.Changed += (_, _) => Check();
                w.Created += (_, _) => Check();
                w.Deleted += (_, _) => Check();
                w.Renamed += (_, _) => Check();
                _watchers.Add(w);
            }
            // The poll backs up the watcher (missed events, ConfigMap symlink swaps) and lets a change settle.
            _poll = new Timer(_ => Check(), null, PollInterval, PollInterval);
        }
    }

    /// <summary>Looks at the files: reloads once a changed set has settled.</summary>
    private void Check()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            string now = Fingerprint();
            if (now == _applied)
            {
                _seen = now;
                return;
            }
            long ticks = Environment.TickCount64;
            if (now != _seen)
            {
                _seen = now;
                _seenAt = ticks;
                return;
            }
            if (ticks - _seenAt < (long)SettlePeriod.TotalMilliseconds)
            {
                return;
            }
            _applied = now;
            try
            {
                ReloadLocked(initial: false);
            }
            catch (Exception ex)
            {
                // A bug in reading must not stop the watching or take the agent down; the last good state stays.
                Log.ReloadFailed(_logger, _source.Name, ex.Message);
            }
        }
    }

    private ImmutableArray<ConfigError> ReloadLocked(bool initial)
    {
        var read = ManifestReader.Read(_paths);
        var errors = read.Errors;
        TranslationResult? translated = null;
        if (errors.IsEmpty)
        {
            translated = _translator.Translate(read.Objects);
            errors = translated.Errors;
        }
        foreach (ConfigError warning in read.Warnings.AddRange(translated?.Warnings ?? []))
        {
            Log.Warning(_logger, warning.ToString());
        }
        if (errors.IsEmpty && translated is not null && translated.Resources.Count == 0 && _lastGoodCount > 0)
        {
            errors = [new ConfigError(string.Join(",", _paths), 0, 0, "", $"the manifests now define nothing (the last good state had {_lastGoodCount} entries): refusing to withdraw the whole mesh; an empty or half-written file?")];
        }
        if (!errors.IsEmpty)
        {
            _source.ReportError($"manifests refused ({errors.Length} errors), keeping the last good state", errors.Select(e => e.ToString()));
            if (!initial)
            {
                Log.Refused(_logger, _source.Name, errors.Length, string.Join("\n  ", errors));
                Reloaded?.Invoke(false);
            }
            return errors;
        }
        if (!translated!.IgnoredKinds.IsEmpty)
        {
            Log.IgnoredKinds(_logger, string.Join(", ", translated.IgnoredKinds));
        }
        var r = translated.Resources;
        _source.Replace(r);
        _lastGoodCount = r.Count;
        _source.ReportSuccess();
        _source.MarkSynced();
        Log.Applied(_logger, _source.Name, read.Objects.Length, r.Workloads.Length, r.Services.Length, r.Policies.Length, r.Objects.Length);
        if (!initial)
        {
            Reloaded?.Invoke(true);
        }
        return [];
    }

    /// <summary>Names, sizes and modification times of every manifest file: cheap enough for every poll.</summary>
    private string Fingerprint()
    {
        var parts = new List<string>();
        foreach (string p in _paths)
        {
            IEnumerable<string> files = Directory.Exists(p) ? ManifestReader.ManifestFiles(p) : [p];
            foreach (string f in files)
            {
                var info = new FileInfo(f);
                parts.Add(info.Exists ? $"{f}|{info.Length}|{info.LastWriteTimeUtc.Ticks}" : $"{f}|missing");
            }
        }
        return string.Join('\n', parts);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var w in _watchers)
            {
                w.Dispose();
            }
            _watchers.Clear();
            _poll?.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "{Source}: {Objects} objects -> {Workloads} workloads, {Services} services, {Policies} policies, {MeshObjects} other mesh objects")]
        public static partial void Applied(ILogger logger, string source, int objects, int workloads, int services, int policies, int meshObjects);

        [LoggerMessage(EventId = 111, Level = LogLevel.Error, Message = "{Source}: change refused, keeping the last good state ({Count} errors):\n  {Errors}")]
        public static partial void Refused(ILogger logger, string source, int count, string errors);

        [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "manifests: {Warning}")]
        public static partial void Warning(ILogger logger, string warning);

        [LoggerMessage(EventId = 113, Level = LogLevel.Debug, Message = "manifests: ignoring kinds this mesh does not use: {Kinds}")]
        public static partial void IgnoredKinds(ILogger logger, string kinds);

        [LoggerMessage(EventId = 114, Level = LogLevel.Error, Message = "{Source}: reload failed, keeping the last good state: {Error}")]
        public static partial void ReloadFailed(ILogger logger, string source, string error);
    }
}
