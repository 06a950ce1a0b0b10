using Ambient.Benchmarks.Fixtures;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Benchmarks.State;

/// <summary>
/// A mesh change through the store (issue 8): indexing a whole mesh into a <see cref="MeshSnapshot"/>, one workload
/// changed among N (what a pod update from the Kubernetes API or the CNI costs), and a source republishing its whole
/// state with one workload changed (what a file reload or a re-list costs: a diff, then the one change). Workloads,
/// services (one per 10 workloads) and namespace policies (one per 10 workloads) all scale with <see cref="Workloads"/>.
/// </summary>
[MemoryDiagnoser]
public class SnapshotBenchmarks
{
    private MeshConfig _config = null!;
    private MeshStore _store = null!;
    private MeshSource _source = null!;
    private Workload _a = null!;
    private Workload _b = null!;
    private MeshResources _fullA = null!;
    private MeshResources _fullB = null!;
    private bool _flip;

    [Params(1_000, 10_000)]
    public int Workloads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _config = MeshFixtures.Mesh(Workloads);
        // Nothing subscribes to Changed: this measures the merge, the snapshot update and the swap, not a listener.
        _store = new MeshStore(NullLogger<MeshStore>.Instance);
        _source = _store.AddSource("bench", 0);
        _source.Replace(_config.Resources);
        if (_store.Current.WorkloadCount != Workloads)
        {
            throw new InvalidOperationException($"the store holds {_store.Current.WorkloadCount} workloads, expected {Workloads}");
        }
        // One workload in the middle flips between two health states: a real change each time.
        _a = _config.Workloads[Workloads / 2];
        _b = _a with { Status = HealthStatus.Unhealthy };
        _fullA = _config.Resources;
        _fullB = _fullA with { Workloads = _fullA.Workloads.SetItem(Workloads / 2, _b) };
    }

    /// <summary>Builds every index (by IP, uid, name, VIP, hostname, service endpoints, node, policy sets) from nothing.</summary>
    [Benchmark(Baseline = true)]
    public MeshSnapshot Build() => MeshSnapshot.Build(_config, 2);

    /// <summary>One workload upserted among N: merge by key, validate its addresses, update the indexes it touches, swap.</summary>
    [Benchmark]
    public MeshSnapshot UpdateOneWorkload()
    {
        _flip = !_flip;
        _source.Apply(new MeshDelta { Upserts = new MeshResources { Workloads = [_flip ? _b : _a] } });
        return _store.Current;
    }

    /// <summary>A source republishes its whole state in which one workload changed (file reload, re-list).</summary>
    [Benchmark]
    public MeshSnapshot ReplaceAllOneChanged()
    {
        _flip = !_flip;
        _source.Replace(_flip ? _fullB : _fullA);
        return _store.Current;
    }
}
