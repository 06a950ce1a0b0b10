using System.Collections.Immutable;

namespace Ambient.Mesh.Sources;

/// <summary>
/// One source's handle on the <see cref="MeshStore"/>: what the source publishes (its whole state, or a delta), when
/// it finished its initial sync, and what went wrong. A source knows its protocol (files, Kubernetes watch, xDS, the
/// CNI), never the proxies; the store never knows the protocol.
/// </summary>
public sealed class MeshSource
{
    private readonly MeshStore _store;
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _statusLock = new();
    private string? _lastError;
    private DateTimeOffset? _lastSync;
    private DateTimeOffset? _lastErrorAt;
    private ImmutableArray<string> _errors = [];

    internal MeshSource(MeshStore store, string name, int precedence, int order, bool requiredForReadiness, bool logConflicts)
    {
        LogConflicts = logConflicts;
        _store = store;
        Name = name;
        Precedence = precedence;
        Order = order;
        RequiredForReadiness = requiredForReadiness;
    }

    /// <summary>How /config_dump and the log name it: "config:/etc/ambient/config.yaml", "kubernetes", "cni"...</summary>
    public string Name { get; }

    /// <summary>Higher wins when two sources publish the same key.</summary>
    public int Precedence { get; }

    internal int Order { get; }

    public bool RequiredForReadiness { get; }

    /// <summary>
    /// Log a line when another source publishes a key this one has too (MCP registries: a host two registries claim).
    /// Off for sources that shadow on purpose (the CNI source re-publishes every captured pod's workload).
    /// </summary>
    public bool LogConflicts { get; }

    /// <summary>Completes at the first <see cref="MarkSynced"/>.</summary>
    public Task Synced => _synced.Task;

    internal bool SyncedLocked => _synced.Task.IsCompleted;

    internal DateTimeOffset? LastChange { get; set; }


    /// <summary>Replaces everything this source published before (state of the world).</summary>
    public void Replace(MeshResources all) => _store.Publish(this, all, null);

    /// <summary>Applies a change: removals first, then upserts.</summary>
    public void Apply(MeshDelta delta)
    {
        if (!delta.IsEmpty)
        {
            _store.Publish(this, null, delta);
        }
    }

    /// <summary>The source has published its initial state (readiness waits for every required source).</summary>
    public void MarkSynced()
    {
        lock (_statusLock)
        {
            _lastSync = DateTimeOffset.UtcNow;
        }
        _synced.TrySetResult();
        _store.OnSynced(this);
    }

    /// <summary>Records a successful sync after the first (a reload, a re-list): clears the last error.</summary>
    public void ReportSuccess()
    {
        lock (_statusLock)
        {
            _lastSync = DateTimeOffset.UtcNow;
            _lastError = null;
            _errors = [];
        }
    }

    /// <summary>What went wrong last (the source keeps serving its last good state); shown in /config_dump.</summary>
    public void ReportError(string message, IEnumerable<string>? details = null)
    {
        lock (_statusLock)
        {
            _lastError = message;
            _lastErrorAt = DateTimeOffset.UtcNow;
            _errors = details is null ? [] : [.. details.Take(50)];
        }
    }

    /// <summary>Withdraws everything this source published and unregisters it.</summary>
    public void Remove() => _store.RemoveSource(this);

    internal SourceStatus Status(int workloads, int services, int policies, int objects, ImmutableArray<string> conflicts, ImmutableArray<string> refused)
    {
        lock (_statusLock)
        {
            return new SourceStatus(
                Name, Precedence, SyncedLocked, RequiredForReadiness, _lastSync, LastChange,
                workloads, services, policies, objects, conflicts.Length,
                _lastError, _lastErrorAt, _errors, refused)
            {
                Conflicts = conflicts.Length <= 100 ? conflicts : [.. conflicts.Take(100)],
            };
        }
    }
}

/// <summary>A source's state for readiness and /config_dump.</summary>
public sealed record SourceStatus(
    string Name,
    int Precedence,
    bool Synced,
    bool RequiredForReadiness,
    DateTimeOffset? LastSync,
    DateTimeOffset? LastChange,
    int Workloads,
    int Services,
    int Policies,
    int Objects,
    int Shadowed,
    string? LastError,
    DateTimeOffset? LastErrorAt,
    ImmutableArray<string> Errors,
    ImmutableArray<string> Refused)
{
    /// <summary>Each entry of this source another source overrides ("service ns/host: shadowed by mcp:b (precedence 40)"), at most 100.</summary>
    public ImmutableArray<string> Conflicts { get; init; } = [];
}
