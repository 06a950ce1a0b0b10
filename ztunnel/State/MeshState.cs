using Ambient.Mesh.Config;
using Ambient.Mesh.State;

namespace Ambient.Ztunnel.State;

/// <summary>
/// Holds the live <see cref="MeshSnapshot"/>. A new config replaces the snapshot whole (one reference swap), so a
/// connection that read <see cref="Current"/> keeps one consistent view; subscribers hear of every swap.
/// </summary>
internal sealed class MeshState
{
    private MeshSnapshot _current;
    private long _version;

    public MeshState(MeshConfig initial, string nodeName)
    {
        NodeName = nodeName;
        _current = MeshSnapshot.Build(initial, ++_version);
    }

    /// <summary>This agent's node; empty means every workload in the config is local.</summary>
    public string NodeName { get; }

    public MeshSnapshot Current => Volatile.Read(ref _current);

    public event Action<MeshSnapshot, MeshSnapshot>? Changed;

    public void Update(MeshConfig config)
    {
        var next = MeshSnapshot.Build(config, Interlocked.Increment(ref _version));
        var previous = Interlocked.Exchange(ref _current, next);
        Changed?.Invoke(previous, next);
    }

    public bool IsLocal(Ambient.Mesh.Model.Workload w) => NodeName.Length == 0 || w.Node == NodeName;
}
