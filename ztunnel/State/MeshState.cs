using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Mesh.State;

namespace Ambient.Ztunnel.State;

/// <summary>
/// Holds the live <see cref="MeshSnapshot"/>. A new config (or a pod arriving through the CNI plugin) replaces the
/// snapshot whole (one reference swap), so a connection that read <see cref="Current"/> keeps one consistent view;
/// subscribers hear of every swap.
/// </summary>
internal sealed class MeshState
{
    private readonly Lock _lock = new();
    private MeshSnapshot _current;
    private MeshConfig _base;
    private ImmutableDictionary<string, Workload> _pods = ImmutableDictionary<string, Workload>.Empty;
    private long _version;

    public MeshState(MeshConfig initial, string nodeName)
    {
        NodeName = nodeName;
        _base = initial;
        _current = MeshSnapshot.Build(initial, ++_version);
    }

    /// <summary>This agent's node; empty means every workload in the config is local.</summary>
    public string NodeName { get; }

    public MeshSnapshot Current => Volatile.Read(ref _current);

    /// <summary>The config as loaded, without the pods learned from the CNI plugin.</summary>
    public MeshConfig BaseConfig => Volatile.Read(ref _base);

    public event Action<MeshSnapshot, MeshSnapshot>? Changed;

    public void Update(MeshConfig config)
    {
        lock (_lock)
        {
            _base = config;
            Rebuild();
        }
    }

    /// <summary>Adds or replaces a pod captured on this node (its workload as the config knows it, with the CNI's IPs).</summary>
    public void SetPod(Workload pod)
    {
        lock (_lock)
        {
            _pods = _pods.SetItem(pod.Uid, pod);
            Rebuild();
        }
    }

    public void RemovePod(string uid)
    {
        lock (_lock)
        {
            if (!_pods.ContainsKey(uid))
            {
                return;
            }
            _pods = _pods.Remove(uid);
            Rebuild();
        }
    }

    private void Rebuild()
    {
        var config = _base;
        if (!_pods.IsEmpty)
        {
            // A captured pod replaces the config's workload of the same uid or namespace/name: the CNI result is the
            // truth for its addresses and its node.
            var byUid = _pods;
            var names = _pods.Values.Select(p => (p.Namespace, p.Name)).ToHashSet();
            var kept = config.Workloads.Where(w => !byUid.ContainsKey(w.Uid) && !names.Contains((w.Namespace, w.Name)));
            config = config with { Workloads = [.. kept, .. _pods.Values] };
        }
        var next = MeshSnapshot.Build(config, ++_version);
        var previous = Interlocked.Exchange(ref _current, next);
        Changed?.Invoke(previous, next);
    }

    public bool IsLocal(Workload w) => NodeName.Length == 0 || w.Node == NodeName;
}
