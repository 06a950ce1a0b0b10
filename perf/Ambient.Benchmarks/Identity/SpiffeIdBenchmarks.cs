using Ambient.Mesh.Identity;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Identity;

/// <summary>Peer identity handling once per HBONE connection: parsing the certificate's URI SAN and forming the principal.</summary>
[MemoryDiagnoser]
public class SpiffeIdBenchmarks
{
    private const string Uri = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage";
    private readonly SpiffeId _id = new("cluster.local", "bookinfo", "bookinfo-productpage");

    [Benchmark]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "BenchmarkDotNet runs instance methods")]
    public SpiffeId? TryParse() => SpiffeId.TryParse(Uri, out SpiffeId? id) ? id : null;

    /// <summary>What the authorizer is handed (ConnectionInfo.SourcePrincipal); ideally cached, not re-formatted per call.</summary>
    [Benchmark]
    public string Principal() => _id.Principal;
}
