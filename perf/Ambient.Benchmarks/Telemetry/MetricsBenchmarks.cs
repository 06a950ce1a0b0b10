using Ambient.Benchmarks.Fixtures;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Telemetry;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Telemetry;

/// <summary>
/// The Prometheus registry with <see cref="LabelSets"/> L4 label sets (source/destination workload pairs, as a
/// busy node has): rendering <c>/metrics</c> (once per scrape) and the per-connection label lookup that
/// <see cref="ConnectionRecord.Open"/> does.
/// </summary>
[MemoryDiagnoser]
public class MetricsBenchmarks
{
    public const int LabelSets = 1_000;

    private MeshMetrics _metrics = null!;
    private Workload _source = null!;
    private Workload _destination = null!;
    private string _sourcePrincipal = null!;
    private string _destinationPrincipal = null!;

    [GlobalSetup]
    public void Setup()
    {
        _metrics = new MeshMetrics { Version = "1.0.0" };
        var workloads = MeshFixtures.Mesh(LabelSets).Workloads;
        for (int i = 0; i < LabelSets; i++)
        {
            // Telemetry names the deployment (workloadName), not the pod: distinct (source app, destination app)
            // pairs make distinct label sets, ten source apps for each of the hundred destination apps.
            int destinationApp = i / MeshFixtures.ReplicasPerApp;
            int sourceApp = (destinationApp + 1 + i % MeshFixtures.ReplicasPerApp) % (LabelSets / MeshFixtures.ReplicasPerApp);
            Workload source = workloads[sourceApp * MeshFixtures.ReplicasPerApp];
            Workload destination = workloads[destinationApp * MeshFixtures.ReplicasPerApp];
            TcpCounters c = _metrics.For(Labels(source, source.SpiffeId(MeshFixtures.TrustDomain), destination, destination.SpiffeId(MeshFixtures.TrustDomain)));
            _metrics.ConnectionOpened(c);
            Interlocked.Add(ref c.ReceivedBytes, 1_000L * i);
            Interlocked.Add(ref c.SentBytes, 50_000L * i);
            if (i % 2 == 0)
            {
                _metrics.ConnectionClosed(c);
            }
        }
        _metrics.Refused("hbone", "tls_handshake");
        _metrics.ConfigReload(true);
        _source = workloads[10];
        _destination = workloads[500];
        _sourcePrincipal = _source.SpiffeId(MeshFixtures.TrustDomain);
        _destinationPrincipal = _destination.SpiffeId(MeshFixtures.TrustDomain);
        int samples = Render().Split('\n').Count(l => l.StartsWith("istio_tcp_connections_opened_total{", StringComparison.Ordinal));
        if (samples != LabelSets)
        {
            throw new InvalidOperationException($"the registry renders {samples} label sets, expected {LabelSets}");
        }
    }

    /// <summary>One scrape: four istio_tcp_* families of 1,000 samples each plus the agent's own metrics.</summary>
    [Benchmark]
    public string Render() => _metrics.Render();

    /// <summary>A connection's counters: build the label set and find the existing counters by reference key (what ConnectionRecord.Open does).</summary>
    [Benchmark]
    public object LabelLookup() => _metrics.For(Labels(_source, _sourcePrincipal, _destination, _destinationPrincipal).ToKey());

    private static TcpLabels Labels(Workload source, string sourcePrincipal, Workload destination, string destinationPrincipal) => new()
    {
        Reporter = "source",
        Source = source,
        SourcePrincipal = sourcePrincipal,
        Destination = destination,
        DestinationPrincipal = destinationPrincipal,
        ResponseFlags = "-",
        MutualTls = true,
    };
}
