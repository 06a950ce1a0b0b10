using Ambient.Benchmarks.Fixtures;
using Ambient.Mesh.Kubernetes;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Kubernetes;

/// <summary>
/// <see cref="KubeTranslator.Translate"/> of a whole cluster: what the Kubernetes API source pays after every batch
/// of watch events. Pods, services (one per 10 pods) and selector policies (one per service) scale together;
/// <see cref="Namespaces"/> 100 spreads them as clusters usually are, 1 crowds them into one namespace, where a
/// translation that matched every selector against every pod would be quadratic (the 10k/1 case would cost ~100x
/// the 1k/1 case instead of ~10x).
/// </summary>
[MemoryDiagnoser]
public class KubeTranslateBenchmarks
{
    private KubeObject[] _objects = null!;
    private readonly KubeTranslator _translator = new();

    [Params(1_000, 10_000)]
    public int Pods { get; set; }

    [Params(1, 100)]
    public int Namespaces { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _objects = KubeFixtures.Objects(Pods, Namespaces);
        TranslationResult r = Translate();
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

    [Benchmark]
    public TranslationResult Translate() => _translator.Translate(_objects);
}
