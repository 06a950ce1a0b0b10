using Ambient.Benchmarks.Fixtures;
using Ambient.Mesh.Kubernetes;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Kubernetes;

/// <summary>
/// <see cref="KubeTranslator.Translate"/> of a whole cluster. <see cref="Cold"/> is a fresh translator (the agent's
/// start, a re-list): every object is read. <see cref="AfterOneChange"/> is what the Kubernetes API source pays after
/// a batch of watch events that replaced one pod: the translator re-reads only that pod, but joins, indexes and
/// compares the whole mesh again. Pods, services (one per 10 pods) and selector policies (one per service) scale
/// together; <see cref="Namespaces"/> 100 spreads them as clusters usually are, 1 crowds them into one namespace,
/// where matching every selector against every pod would be quadratic (10k/1 would cost ~100x 1k/1, not ~10x).
/// </summary>
[MemoryDiagnoser]
public class KubeTranslateBenchmarks
{
    private KubeObject[] _objects = null!;
    private KubeObject[] _changed = null!;
    private KubeTranslator _translator = null!;
    private bool _flip;

    [Params(1_000, 10_000)]
    public int Pods { get; set; }

    [Params(1, 100)]
    public int Namespaces { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _objects = KubeFixtures.Objects(Pods, Namespaces);
        // The same cluster with one pod replaced by a new instance (a watch event: its readiness flipped).
        _changed = (KubeObject[])_objects.Clone();
        int last = Array.FindLastIndex(_objects, o => o.Kind == "Pod");
        var reread = ManifestReader.Parse(KubeFixtures.Yaml(Pods, Namespaces).Replace("{type: Ready, status: \"True\"}", "{type: Ready, status: \"False\"}", StringComparison.Ordinal), "f.yaml");
        _changed[last] = reread.Objects[last] with { File = null };
        _translator = new KubeTranslator();
        TranslationResult r = Cold();
        if (!r.Errors.IsEmpty || !r.Warnings.IsEmpty)
        {
            throw new InvalidOperationException($"fixture translates with problems: {(r.Errors.IsEmpty ? r.Warnings[0] : r.Errors[0])}");
        }
        int services = Pods / 10;
        if (r.Resources.Workloads.Length != Pods || r.Resources.Services.Length != services || r.Resources.Policies.Length != services)
        {
            throw new InvalidOperationException($"fixture translated to {r.Resources.Workloads.Length} workloads, {r.Resources.Services.Length} services");
        }
        // Every pod joined its service (with the named port resolved) and its selector policy.
        foreach (var w in r.Resources.Workloads)
        {
            if (w.Services.Count != 1 || w.AuthorizationPolicies.Length != 1 || w.Protocol != Ambient.Mesh.Model.InboundProtocol.Hbone)
            {
                throw new InvalidOperationException($"workload {w.Uid} did not join its service and policy");
            }
            foreach (var ports in w.Services.Values)
            {
                if (ports[80] != 8080)
                {
                    throw new InvalidOperationException($"workload {w.Uid}: port 80 -> {ports[80]}");
                }
            }
        }
    }

    /// <summary>A fresh translator: every object read, nothing remembered.</summary>
    [Benchmark(Baseline = true)]
    public TranslationResult Cold() => new KubeTranslator().Translate(_objects);

    /// <summary>The steady state of the API source: one pod replaced since the previous run.</summary>
    [Benchmark]
    public TranslationResult AfterOneChange()
    {
        _flip = !_flip;
        return _translator.Translate(_flip ? _changed : _objects);
    }
}
