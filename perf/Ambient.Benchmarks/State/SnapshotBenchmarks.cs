using Ambient.Benchmarks.Fixtures;
using Ambient.Mesh.Config;
using Ambient.Mesh.State;
using Ambient.Ztunnel.State;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.State;

/// <summary>
/// A config change: indexing a config into a <see cref="MeshSnapshot"/> and swapping it in through
/// <see cref="MeshState.Update"/> (what a reload or a pod added by the CNI plugin costs). Workloads, services
/// (one per 10 workloads) and namespace policies (one per 10 workloads) all scale with <see cref="Workloads"/>.
/// </summary>
[MemoryDiagnoser]
public class SnapshotBenchmarks
{
    private MeshConfig _config = null!;
    private MeshConfig _other = null!;
    private MeshState _state = null!;
    private bool _flip;

    [Params(1_000, 10_000)]
    public int Workloads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _config = MeshFixtures.Mesh(Workloads);
        // A second, equal config: Update alternates between them so every swap installs a different base.
        _other = _config with { };
        // Nothing subscribes to Changed: this measures the build and the swap, not a listener.
        _state = new MeshState(_config, "node-0");
    }

    /// <summary>Builds every index (by IP, uid, name, VIP, service endpoints, node, policy sets) into frozen dictionaries.</summary>
    [Benchmark]
    public MeshSnapshot Build() => MeshSnapshot.Build(_config, 2);

    /// <summary>A reload as the agent does it: rebuild under the state lock and publish with one reference swap.</summary>
    [Benchmark]
    public MeshSnapshot Update()
    {
        _flip = !_flip;
        _state.Update(_flip ? _other : _config);
        return _state.Current;
    }
}
