using Ambient.Benchmarks.Fixtures;
using Ambient.Mesh.Config;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Config;

/// <summary>
/// Loading the agent's YAML config (what every file reload pays before the snapshot is built): a generated
/// Istio local config with 1,000 workloads, 100 services and 100 policies.
/// </summary>
[MemoryDiagnoser]
public class ConfigParseBenchmarks
{
    public const int Workloads = 1_000;

    private string _yaml = null!;

    [GlobalSetup]
    public void Setup()
    {
        _yaml = MeshYaml.Write(MeshFixtures.Mesh(Workloads));
        ConfigLoadResult result = Parse();
        if (!result.Ok || result.Config!.Workloads.Length != Workloads)
        {
            string why = string.Join("; ", result.Errors.Take(5).Select(e => e.ToString()));
            throw new InvalidOperationException($"generated config does not load: {why}");
        }
        if (!result.Warnings.IsEmpty)
        {
            throw new InvalidOperationException($"generated config has warnings: {result.Warnings[0]}");
        }
    }

    [Benchmark]
    public ConfigLoadResult Parse() => ConfigLoader.Parse(_yaml, "bench-config.yaml");
}
