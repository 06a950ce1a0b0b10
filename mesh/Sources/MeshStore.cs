using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using Ambient.Mesh.State;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Sources;

/// <summary>
/// The one mesh the proxies read, merged from every source (the local config file, manifest files, the Kubernetes
/// API, the CNI's captured pods, later xDS and MCP). Each source publishes what it knows through its
/// <see cref="MeshSource"/>; the store merges all sources by key, validates the merged model, applies the change to
/// the immutable <see cref="MeshSnapshot"/>, swaps it and raises one <see cref="Changed"/> event.
/// </summary>
/// <remarks>
/// <para><b>Precedence.</b> When two sources publish the same key (a workload uid, a service "ns/hostname", a policy
/// "ns/name", an object "Kind/ns/name"), the one with the higher <see cref="MeshSource.Precedence"/> wins; on a tie,
/// the source added first. The loser's entry is kept and takes over when the winner withdraws it. Conflicts are
/// counted per source (<see cref="SourceStatus.Shadowed"/>) so they are visible, never silent.</para>
/// <para><b>Validation over the merged model</b> (so every source gets it): a workload whose IP (on its network)
/// is already another workload's, or a service whose VIP is already another service's, is refused: the refusal
/// names the object and the owner, is reported in the source's status and the log, and the entry is retried when
/// the owner goes away. The first owner keeps the address, so a lookup never flips.</para>
/// <para><b>Cost.</b> An update touches only the keys it changes: merging is per key, and the snapshot's indexes
/// are persistent dictionaries (see <see cref="MeshSnapshot.Apply"/>).</para>
/// </remarks>
public sealed partial class MeshStore
{
    private readonly Lock _lock = new();
    private readonly List<MeshSource> _sources = [];
    private readonly KindTable<Workload> _workloads = new("workload", static w => w.Uid);
    private readonly KindTable<Service> _services = new("service", static s => s.Key);
    private readonly KindTable<AuthorizationPolicy> _policies = new("policy", static p => p.Key);
    private readonly KindTable<MeshObject> _objects = new("object", static o => o.Key);
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private MeshSnapshot _current = MeshSnapshot.Empty;
    private long _version;

    public MeshStore(ILogger<MeshStore> logger, TimeProvider? time = null)
    {
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    public MeshSnapshot Current => Volatile.Read(ref _current);

    /// <summary>Raised after every swap with (previous, next), outside the store's lock, in swap order.</summary>
    public event Action<MeshSnapshot, MeshSnapshot>? Changed;

    /// <summary>
    /// Raised after every update of a source (and when one finishes its initial sync), whether or not the merged
    /// snapshot changed: an entry another source shadows may have changed. The CNI source shadows a captured pod's
    /// workload, so this is how it (and in-pod enrollment) learns that the pod's labels changed underneath. Raised
    /// outside the store's lock; handlers must be quick.
    /// </summary>
    public event Action<MeshSource>? SourceUpdated;

    internal void OnSynced(MeshSource source) => SourceUpdated?.Invoke(source);

    /// <summary>Every source's status, for readiness and /config_dump.</summary>
    public ImmutableArray<SourceStatus> Sources
    {
        get
        {
            lock (_lock)
            {
                return [.. _sources.Select(s => s.Status(
                    _workloads.CountOf(s), _services.CountOf(s), _policies.CountOf(s), _objects.CountOf(s),
                    [.. _services.ConflictsOf(s), .. _workloads.ConflictsOf(s), .. _policies.ConflictsOf(s), .. _objects.ConflictsOf(s)],
                    [.. _workloads.RefusedOf(s), .. _services.RefusedOf(s)]))];
            }
        }
    }

    /// <summary>True once every source that must sync before readiness has published its initial state.</summary>
    public bool IsSynced
    {
        get
        {
            lock (_lock)
            {
                return _sources.TrueForAll(s => !s.RequiredForReadiness || s.SyncedLocked);
            }
        }
    }

    /// <summary>
    /// Completes once every source registered now that must sync before readiness has published its initial state
    /// (at once when they all have). A source registered later is not waited for.
    /// </summary>
    public Task WhenSyncedAsync(CancellationToken cancellationToken)
    {
        Task[] pending;
        lock (_lock)
        {
            pending = [.. _sources.Where(s => s.RequiredForReadiness && !s.SyncedLocked).Select(s => s.Synced)];
        }
        return pending.Length == 0 ? Task.CompletedTask : Task.WhenAll(pending).WaitAsync(cancellationToken);
    }

    /// <summary>The sources that must sync before readiness and have not yet (their names), for messages.</summary>
    public ImmutableArray<string> UnsyncedSources()
    {
        lock (_lock)
        {
            return [.. _sources.Where(s => s.RequiredForReadiness && !s.SyncedLocked).Select(s => s.Name)];
        }
    }

    /// <summary>
    /// Registers a source. <paramref name="requiredForReadiness"/>: readiness waits for its first
    /// <see cref="MeshSource.MarkSynced"/> (the CNI source, which has nothing to wait for, passes false).
    /// </summary>
    /// <param name="logConflicts">Log one line when this source and another publish the same key (see <see cref="MeshSource.LogConflicts"/>).</param>
    public MeshSource AddSource(string name, int precedence, bool requiredForReadiness = true, bool logConflicts = false)
    {
        lock (_lock)
        {
            if (_sources.Exists(s => s.Name == name))
            {
                throw new InvalidOperationException($"a mesh source named '{name}' is already registered");
            }
            var source = new MeshSource(this, name, precedence, _sources.Count, requiredForReadiness, logConflicts);
            _sources.Add(source);
            return source;
        }
    }

    /// <summary>
    /// The entry for <paramref name="key"/> as the sources other than <paramref name="except"/> have it (the winner among
    /// them). The CNI source uses it to learn a captured pod's workload as the other sources define it.
    /// </summary>
    public Workload? WorkloadFromOthers(string uid, MeshSource except)
    {
        lock (_lock)
        {
            return _workloads.WinnerExcluding(uid, except);
        }
    }

    internal void Publish(MeshSource source, MeshResources? replaceAll, MeshDelta? delta)
    {
        try
        {
            PublishLocked(source, replaceAll, delta);
        }
        finally
        {
            SourceUpdated?.Invoke(source);
        }
    }

    private void PublishLocked(MeshSource source, MeshResources? replaceAll, MeshDelta? delta)
    {
        MeshSnapshot previous, next;
        lock (_lock)
        {
            var changes = new SnapshotChanges();
            if (replaceAll is not null)
            {
                _workloads.Replace(source, replaceAll.Workloads, changes.Workloads);
                _services.Replace(source, replaceAll.Services, changes.Services);
                _policies.Replace(source, replaceAll.Policies, changes.Policies);
                _objects.Replace(source, replaceAll.Objects, changes.Objects);
            }
            if (delta is not null)
            {
                _workloads.Remove(source, delta.RemovedWorkloads, changes.Workloads);
                _services.Remove(source, delta.RemovedServices, changes.Services);
                _policies.Remove(source, delta.RemovedPolicies, changes.Policies);
                _objects.Remove(source, delta.RemovedObjects, changes.Objects);
                _workloads.Upsert(source, delta.Upserts.Workloads, changes.Workloads);
                _services.Upsert(source, delta.Upserts.Services, changes.Services);
                _policies.Upsert(source, delta.Upserts.Policies, changes.Policies);
                _objects.Upsert(source, delta.Upserts.Objects, changes.Objects);
            }
            source.LastChange = _time.GetUtcNow();
            LogConflicts(_workloads);
            LogConflicts(_services);
            LogConflicts(_policies);
            LogConflicts(_objects);
            if (changes.Count == 0)
            {
                return;
            }
            previous = _current;
            next = ValidateAndApply(previous, changes);
            if (ReferenceEquals(next, previous))
            {
                return;
            }
            Volatile.Write(ref _current, next);
            // Raised under the lock so subscribers see swaps in order; handlers must be quick and must not call back
            // into Publish on this thread (the CNI source defers its refresh).
            Changed?.Invoke(previous, next);
        }
    }

    internal void RemoveSource(MeshSource source)
    {
        lock (_lock)
        {
            _sources.Remove(source);
        }
        Publish(source, MeshResources.Empty, null);
    }

    /// <summary>
    /// Validates the winners that changed against the merged model and applies them. A refused entry does not reach
    /// the snapshot (its previous winner, if any, stays); refused entries are retried after every change, so one
    /// that conflicted with an object since removed is admitted.
    /// </summary>
    private MeshSnapshot ValidateAndApply(MeshSnapshot previous, SnapshotChanges changes)
    {
        var admitted = new SnapshotChanges();
        admitted.Policies.AddRange(changes.Policies);
        admitted.Objects.AddRange(changes.Objects);

        // Addresses freed or claimed by this batch, so two entries of one batch are checked against each other too.
        var claimedIps = new Dictionary<(string, IPAddress), string>();
        var freedIps = new HashSet<(string, IPAddress)>();
        foreach (Change<Workload> c in changes.Workloads)
        {
            if (c.Old is { } old && Indexed(old))
            {
                foreach (IPAddress ip in old.WorkloadIps)
                {
                    freedIps.Add((old.Network, ip));
                }
            }
        }
        foreach (Change<Workload> c in Retry(changes.Workloads, _workloads))
        {
            if (c.New is { } w && Indexed(w) && IpConflict(previous, w, claimedIps, freedIps) is { } conflict)
            {
                _workloads.Refuse(c.Key, conflict);
                Log.Refused(_logger, "workload", $"{w.Namespace}/{w.Name}", conflict);
                // Keep what the snapshot had: the change becomes a no-op (or a removal if the old one is gone).
                continue;
            }
            _workloads.Admit(c.Key);
            if (c.New is { } added && Indexed(added))
            {
                foreach (IPAddress ip in added.WorkloadIps)
                {
                    claimedIps[(added.Network, ip)] = added.Uid;
                }
            }
            admitted.Workloads.Add(c with { Old = previous.FindWorkloadByUid(c.Key) });
        }

        var claimedVips = new Dictionary<(string, IPAddress), string>();
        var freedVips = new HashSet<(string, IPAddress)>();
        foreach (Change<Service> c in changes.Services)
        {
            if (c.Old is { } old)
            {
                foreach (NetworkAddress vip in old.Vips)
                {
                    freedVips.Add((vip.Network, vip.Address));
                }
            }
        }
        foreach (Change<Service> c in Retry(changes.Services, _services))
        {
            if (c.New is { } s && VipConflict(previous, s, claimedVips, freedVips) is { } conflict)
            {
                _services.Refuse(c.Key, conflict);
                Log.Refused(_logger, "service", s.Key, conflict);
                continue;
            }
            _services.Admit(c.Key);
            if (c.New is { } added)
            {
                foreach (NetworkAddress vip in added.Vips)
                {
                    claimedVips[(vip.Network, vip.Address)] = added.Key;
                }
            }
            admitted.Services.Add(c with { Old = previous.FindService(c.Key) });
        }
        return admitted.Count == 0 ? previous : previous.Apply(admitted, ++_version);
    }

    /// <summary>This batch's changes plus a fresh attempt for every entry refused earlier.</summary>
    private static List<Change<T>> Retry<T>(List<Change<T>> changes, KindTable<T> table) where T : class
    {
        if (table.RefusedCount == 0)
        {
            return changes;
        }
        var all = new List<Change<T>>(changes);
        var inBatch = new HashSet<string>(changes.Select(c => c.Key), StringComparer.Ordinal);
        foreach ((string key, T value, string origin) in table.RefusedWinners())
        {
            if (!inBatch.Contains(key))
            {
                all.Add(new Change<T>(key, null, value, origin));
            }
        }
        return all;
    }

    /// <summary>One line per key that two sources started to share, when either asked for it; the winner is by precedence.</summary>
    private void LogConflicts<T>(KindTable<T> table) where T : class
    {
        foreach ((string key, MeshSource winner, MeshSource loser) in table.NewConflicts)
        {
            if (!ReferenceEquals(winner, loser) && (winner.LogConflicts || loser.LogConflicts))
            {
                Log.Conflict(_logger, table.Kind, key, winner.Name, winner.Precedence, loser.Name, loser.Precedence);
            }
        }
        table.NewConflicts.Clear();
    }

    private static bool Indexed(Workload w) => w.NetworkMode != NetworkMode.HostNetwork;

    private static string? IpConflict(MeshSnapshot previous, Workload w, Dictionary<(string, IPAddress), string> claimed, HashSet<(string, IPAddress)> freed)
    {
        foreach (IPAddress ip in w.WorkloadIps)
        {
            if (claimed.TryGetValue((w.Network, ip), out string? uid) && uid != w.Uid)
            {
                return $"IP {ip} is already used by workload {Describe(previous.FindWorkloadByUid(uid), uid)}";
            }
            if (!freed.Contains((w.Network, ip)) && previous.FindWorkloadByIp(ip, w.Network) is { } owner && owner.Uid != w.Uid)
            {
                return $"IP {ip} is already used by workload {owner.Namespace}/{owner.Name}";
            }
        }
        return null;
    }

    private static string? VipConflict(MeshSnapshot previous, Service s, Dictionary<(string, IPAddress), string> claimed, HashSet<(string, IPAddress)> freed)
    {
        foreach (NetworkAddress vip in s.Vips)
        {
            if (claimed.TryGetValue((vip.Network, vip.Address), out string? key) && key != s.Key)
            {
                return $"VIP {vip.Address} is already used by service {key}";
            }
            if (!freed.Contains((vip.Network, vip.Address)) && previous.FindServiceByVip(vip.Address, vip.Network) is { } owner && owner.Key != s.Key)
            {
                return $"VIP {vip.Address} is already used by service {owner.Key}";
            }
        }
        return null;
    }

    private static string Describe(Workload? w, string uid) => w is null ? uid : $"{w.Namespace}/{w.Name}";

    private static partial class Log
    {
        [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "mesh store refused {Kind} {Name}: {Reason}")]
        public static partial void Refused(ILogger logger, string kind, string name, string reason);

        [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "mesh store: {Kind} {Key} is published by {Winner} (precedence {WinnerPrecedence}) and {Loser} (precedence {LoserPrecedence}): the first wins")]
        public static partial void Conflict(ILogger logger, string kind, string key, string winner, int winnerPrecedence, string loser, int loserPrecedence);
    }
}
