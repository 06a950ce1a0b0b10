using System.Net;
using Ambient.Mesh.Model;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Policy;

/// <summary>
/// One CIDR check (<see cref="IpNet.Contains"/>), the innermost step of every sourceIps/destinationIps policy
/// match: it sets the per-policy cost in <see cref="AuthorizerBenchmarks"/>.
/// </summary>
[MemoryDiagnoser]
public class IpNetBenchmarks
{
    private readonly IpNet _net = new(IPAddress.Parse("192.168.42.0"), 24);
    private readonly IPAddress _inside = IPAddress.Parse("192.168.42.17");
    private readonly IPAddress _outside = IPAddress.Parse("10.244.3.17");
    private readonly IPAddress _mapped = IPAddress.Parse("10.244.3.17").MapToIPv6();

    [Benchmark]
    public bool Match() => _net.Contains(_inside);

    [Benchmark]
    public bool Mismatch() => _net.Contains(_outside);

    /// <summary>What a dual-stack listener reports for an IPv4 peer.</summary>
    [Benchmark]
    public bool MismatchV4MappedV6() => _net.Contains(_mapped);
}
