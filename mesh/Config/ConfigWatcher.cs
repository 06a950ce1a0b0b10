using System.Collections.Immutable;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Mesh.Config;

/// <summary>
/// Watches a config file; a valid edit is handed to <c>onValid</c>, an invalid one to <c>onInvalid</c>
/// (the caller keeps its last good config). A change is read only once the file has settled: its size and
/// modification time unchanged for <see cref="SettlePeriod"/>.
/// </summary>
/// <remarks>
/// <para>Two triggers feed one debounced reload: a <see cref="FileSystemWatcher"/> on the file's directory
/// (not the file: editors write a temp file and rename it over the original, and a Kubernetes ConfigMap
/// volume swaps a <c>..data</c> symlink, neither of which raises a change event for the file's own name),
/// and a poll every <see cref="PollInterval"/> in case the watcher misses events (network file systems,
/// inotify limits, overflowed buffers).</para>
/// <para>Settling (issue 13): a file rewritten in place in several writes (a script's <c>echo &gt;&gt;</c> lines,
/// a slow copy) is half-written in between, and a half-written config can be valid YAML that simply lacks the
/// policies at its end: applying it fails open. So a change is read only after the file's size and modification
/// time (one <c>stat</c>, cheap enough for every poll; a writer still appending changes both) have stayed the same
/// for <see cref="SettlePeriod"/>, and the file is stat'ed again after reading in case a write landed meanwhile.
/// This covers writers that pause less than the settle period; only an atomic replacement (write a temporary file,
/// rename it over the config, as Kubernetes does for ConfigMap volumes) is safe whatever the writer does.</para>
/// <para>A reload happens only when the file's content hash changed since the last one reported, so the
/// callbacks see each distinct content once. <see cref="Start"/> records the file as it is then without
/// reporting it: the agent loads the config itself at start-up.</para>
/// <para>Callbacks run one at a time on a thread-pool thread. Nothing escapes from the reload path: an
/// exception from a callback is logged and swallowed so a bad handler cannot stop the watching.</para>
/// </remarks>
public sealed class ConfigWatcher : IDisposable
{
    private readonly string _path;
    private readonly Action<MeshConfig> _onValid;
    private readonly Action<ImmutableArray<ConfigError>> _onInvalid;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    // 1 while a reload runs: a flag, not a semaphore, so a timer callback racing Dispose has nothing disposed to touch.
    private int _reloading;
    private FileSystemWatcher? _watcher;
    private Timer? _debounce;
    private Timer? _poll;
    private byte[]? _lastHash;
    private bool _lastMissing;
    private bool _disposed;
    private FileStamp _observed;
    private long _observedAt;

    public ConfigWatcher(string path, Action<MeshConfig> onValid, Action<ImmutableArray<ConfigError>> onInvalid)
        : this(path, onValid, onInvalid, null)
    {
    }

    public ConfigWatcher(string path, Action<MeshConfig> onValid, Action<ImmutableArray<ConfigError>> onInvalid, ILogger? logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(onValid);
        ArgumentNullException.ThrowIfNull(onInvalid);
        _path = Path.GetFullPath(path);
        _onValid = onValid;
        _onInvalid = onInvalid;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Quiet time after the last change event before reloading (editors write in bursts).</summary>
    public TimeSpan Debounce { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>How often the file is checked even without change events.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long the file's size and modification time must stay unchanged before a change is read. 2 s: far longer
    /// than an editor's save or a script's burst of writes, short enough that an edit applies within a few seconds.
    /// </summary>
    public TimeSpan SettlePeriod { get; init; } = TimeSpan.FromSeconds(2);

    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_debounce is not null)
            {
                return;
            }
            _lastHash = Fingerprint(out _);
            _lastMissing = _lastHash is null;
            _observed = Stamp();
            _observedAt = Environment.TickCount64 - (long)SettlePeriod.TotalMilliseconds;
            _debounce = new Timer(_ => OnDebounced(), null, Timeout.Infinite, Timeout.Infinite);
            _poll = new Timer(_ => Schedule(TimeSpan.Zero), null, PollInterval, PollInterval);
            string? dir = Path.GetDirectoryName(_path);
            if (dir is not null && Directory.Exists(dir))
            {
                try
                {
                    _watcher = new FileSystemWatcher(dir)
                    {
                        // Every name in the directory: the rename target, the ConfigMap's ..data symlink.
                        IncludeSubdirectories = false,
                        NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite
                            | NotifyFilters.Size | NotifyFilters.CreationTime,
                    };
                    _watcher.Changed += OnEvent;
                    _watcher.Created += OnEvent;
                    _watcher.Deleted += OnEvent;
                    _watcher.Renamed += OnEvent;
                    _watcher.Error += (_, e) => ConfigLog.WatcherError(_logger, e.GetException());
                    _watcher.EnableRaisingEvents = true;
                }
                catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException or UnauthorizedAccessException)
                {
                    // inotify instance limit reached, for example: the poll still catches every change.
                    ConfigLog.CannotWatch(_logger, e, dir, PollInterval);
                    _watcher?.Dispose();
                    _watcher = null;
                }
            }
        }
    }

    private void OnEvent(object sender, FileSystemEventArgs e) => Schedule(Debounce);

    private void Schedule(TimeSpan delay)
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                // Restarting the timer on every event is the debounce: the reload runs once the burst is over.
                _debounce?.Change(delay, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void OnDebounced()
    {
        // One reload at a time; a poll arriving during a reload is dropped (the next one sees the result).
        if (Interlocked.Exchange(ref _reloading, 1) == 1)
        {
            return;
        }
        try
        {
            if (Settled())
            {
                ReloadIfChanged();
            }
        }
        catch (Exception e)
        {
            ConfigLog.ReloadFailed(_logger, e, _path);
        }
        finally
        {
            Volatile.Write(ref _reloading, 0);
        }
    }

    /// <summary>
    /// True once the file's stamp has been the same for <see cref="SettlePeriod"/>; otherwise records the new stamp
    /// and schedules another look for when it could have settled.
    /// </summary>
    private bool Settled()
    {
        FileStamp stamp = Stamp();
        long now = Environment.TickCount64;
        if (stamp != _observed)
        {
            _observed = stamp;
            _observedAt = now;
            Schedule(SettlePeriod);
            return false;
        }
        long waited = now - _observedAt;
        if (waited < (long)SettlePeriod.TotalMilliseconds)
        {
            Schedule(SettlePeriod - TimeSpan.FromMilliseconds(waited));
            return false;
        }
        return true;
    }

    private void ReloadIfChanged()
    {
        byte[]? hash = Fingerprint(out string? text);
        if (Stamp() != _observed)
        {
            // Written while we read it: what we read may be half of it. Wait for it to settle again.
            Schedule(TimeSpan.Zero);
            return;
        }
        bool missing = hash is null;
        if (_disposed || (missing && _lastMissing) || (!missing && _lastHash is not null && hash!.AsSpan().SequenceEqual(_lastHash)))
        {
            return;
        }
        _lastHash = hash;
        _lastMissing = missing;

        ConfigLoadResult result = text is null ? ConfigLoader.LoadFile(_path) : ConfigLoader.Parse(text, _path);
        foreach (ConfigError warning in result.Warnings)
        {
            ConfigLog.Warning(_logger, warning);
        }
        try
        {
            if (result.Ok)
            {
                ConfigLog.Reloaded(_logger,
                    _path, result.Config!.Workloads.Length, result.Config.Services.Length, result.Config.Policies.Length);
                _onValid(result.Config);
            }
            else
            {
                ConfigLog.Invalid(_logger,
                    _path, result.Errors.Length, result.Errors.IsEmpty ? "" : result.Errors[0].ToString());
                _onInvalid(result.Errors);
            }
        }
        catch (Exception e)
        {
            ConfigLog.HandlerThrew(_logger, e);
        }
    }

    /// <summary>What "the file changed" is judged by before reading it: existence, size, modification time.</summary>
    private readonly record struct FileStamp(bool Exists, long Length, long WriteTicks);

    private FileStamp Stamp()
    {
        try
        {
            var info = new FileInfo(_path);
            return info.Exists ? new FileStamp(true, info.Length, info.LastWriteTimeUtc.Ticks) : default;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return default;
        }
    }

    /// <summary>SHA-256 of the content, or null when the file cannot be read (missing, mid-swap).</summary>
    private byte[]? Fingerprint(out string? text)
    {
        text = null;
        try
        {
            byte[] bytes = File.ReadAllBytes(_path);
            // Same decoding as File.ReadAllText (a UTF-8 BOM is dropped), but from the bytes that were hashed.
            using var reader = new StreamReader(new MemoryStream(bytes), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            text = reader.ReadToEnd();
            return SHA256.HashData(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _watcher?.Dispose();
            _debounce?.Dispose();
            _poll?.Dispose();
        }
    }
}
