using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// The pods the CNI plugin handed to this agent, as a mesh source: for each captured pod, the workload the other
/// sources define for it (same namespace/name) with the CNI's addresses and this node, or a workload with service
/// account "default" when no source knows the pod. It outranks every other source (the CNI result is the truth for
/// a local pod's addresses) and follows changes of the other sources: when the config or the API changes a captured
/// pod's workload, the derived entry is republished.
/// </summary>
internal sealed class CniPodSource
{
    /// <summary>Above every configurable source.</summary>
    public const int Precedence = 1000;

    private readonly MeshStore _store;
    private readonly MeshSource _source;
    private readonly string _nodeName;
    private readonly Lock _lock = new();
    private ImmutableDictionary<string, CapturedIdentity> _pods = ImmutableDictionary<string, CapturedIdentity>.Empty;
    private int _refreshQueued;

    public CniPodSource(MeshStore store, string nodeName)
    {
        _store = store;
        _nodeName = nodeName;
        // Nothing to wait for: an empty node is synced.
        _source = store.AddSource("cni", Precedence, requiredForReadiness: false);
        _source.MarkSynced();
        // Not Changed: this source shadows a captured pod's workload, so an edit of it by another source (a label, a
        // service account) changes no snapshot until the derived entry is republished.
        store.SourceUpdated += OnSourceUpdated;
    }

    /// <summary>Publishes a captured pod; returns the workload the proxies will see for it.</summary>
    public Workload Add(string ns, string name, string podUid, IReadOnlyList<string> ips)
    {
        var parsed = ips.Select(s => IPAddress.TryParse(s, out var ip) ? ip : null).Where(ip => ip is not null).Select(ip => ip!).ToImmutableArray();
        // The uid other sources use for this pod (the config's or the API's), so the CNI entry replaces theirs.
        string uid = _store.Current.FindWorkload(ns, name)?.Uid ?? podUid;
        var identity = new CapturedIdentity(uid, ns, name, podUid, parsed);
        lock (_lock)
        {
            _pods = _pods.SetItem(uid, identity);
            var w = Derive(identity);
            _source.Apply(new MeshDelta { Upserts = new MeshResources { Workloads = [w] } });
            return w;
        }
    }

    /// <summary>
    /// The workload the sources other than this one define for a pod (by namespace/name): what decides whether a pod is
    /// enrolled, since this source publishes every captured pod as HBONE.
    /// </summary>
    public Workload? WorkloadFromOthers(string ns, string name)
    {
        var current = _store.Current.FindWorkload(ns, name);
        if (current is null)
        {
            return null;
        }
        return _pods.ContainsKey(current.Uid) ? _store.WorkloadFromOthers(current.Uid, _source) : current;
    }

    public void Remove(string uid)
    {
        lock (_lock)
        {
            if (!_pods.ContainsKey(uid))
            {
                return;
            }
            _pods = _pods.Remove(uid);
            _source.Apply(new MeshDelta { RemovedWorkloads = [uid] });
        }
    }

    private Workload Derive(CapturedIdentity pod)
    {
        var base_ = _store.WorkloadFromOthers(pod.Uid, _source);
        if (base_ is not null)
        {
            return base_ with
            {
                WorkloadIps = pod.Ips.IsEmpty ? base_.WorkloadIps : pod.Ips,
                Node = _nodeName,
                Protocol = InboundProtocol.Hbone,
            };
        }
        return new Workload
        {
            Uid = pod.Uid,
            Name = pod.Name,
            Namespace = pod.Namespace,
            ServiceAccount = "default",
            WorkloadIps = pod.Ips,
            Protocol = InboundProtocol.Hbone,
            Node = _nodeName,
        };
    }

    /// <summary>
    /// Another source changed: re-derive the captured pods' entries. Deferred to the thread pool, since this runs during
    /// the store's publication; a burst of changes queues one refresh.
    /// </summary>
    private void OnSourceUpdated(MeshSource source)
    {
        if (ReferenceEquals(source, _source) || _pods.IsEmpty || Interlocked.Exchange(ref _refreshQueued, 1) == 1)
        {
            return;
        }
        ThreadPool.UnsafeQueueUserWorkItem(static self => self.Refresh(), this, preferLocal: false);
    }

    private void Refresh()
    {
        Volatile.Write(ref _refreshQueued, 0);
        lock (_lock)
        {
            var upserts = new List<Workload>();
            foreach (CapturedIdentity pod in _pods.Values)
            {
                var derived = Derive(pod);
                if (!derived.Equals(_store.Current.FindWorkloadByUid(pod.Uid)))
                {
                    upserts.Add(derived);
                }
            }
            if (upserts.Count > 0)
            {
                _source.Apply(new MeshDelta { Upserts = new MeshResources { Workloads = [.. upserts] } });
            }
        }
    }

    private sealed record CapturedIdentity(string Uid, string Namespace, string Name, string PodUid, ImmutableArray<IPAddress> Ips);
}
