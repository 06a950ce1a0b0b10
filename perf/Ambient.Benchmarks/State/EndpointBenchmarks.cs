using System.Net;
using Ambient.Benchmarks.Fixtures;
using Ambient.Mesh.Model;
using Ambient.Mesh.State;
using Ambient.Ztunnel.State;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.State;

/// <summary>
/// Outbound endpoint choice for a service VIP backed by 10,000 HBONE endpoints, in the steady state: the
/// snapshot's <see cref="EndpointSet"/> for the port is built in setup (first call) and cached, so each
/// operation is what a new outbound connection pays.
/// </summary>
[MemoryDiagnoser]
public class EndpointBenchmarks
{
    public const int Endpoints = 10_000;

    private MeshSnapshot _snapshot = null!;
    private Resolver _resolver = null!;
    private Service _service = null!;
    private Workload _client = null!;
    private IPEndPoint _vip = null!;
    private EndpointSet _set = null!;
    private EndpointSet _failover = null!;
    // Seeded: every run picks the same sequence of endpoints (Resolve itself uses Random.Shared, as the agent does).
    private readonly Random _random = new(42);

    [GlobalSetup]
    public void Setup()
    {
        var (config, service, client) = MeshFixtures.BigService(Endpoints);
        _snapshot = MeshSnapshot.Build(config, 1);
        _resolver = new Resolver(config.TrustDomain);
        _service = service;
        _client = client;
        _vip = new IPEndPoint(service.Vips[0].Address, MeshFixtures.ServicePort);
        _set = _resolver.Endpoints(_snapshot, _service, MeshFixtures.ServicePort);
        if (_set.Count != Endpoints)
        {
            throw new InvalidOperationException($"endpoint set has {_set.Count} endpoints, expected {Endpoints}");
        }
        // The same endpoints behind a service with loadBalancing FAILOVER (NETWORK, REGION, ZONE, SUBZONE: what
        // trafficDistribution PreferClose gives): every pick ranks every endpoint against the client.
        var ranked = _service with { LoadBalancing = new LoadBalancing([LoadBalancingScope.Network, LoadBalancingScope.Region, LoadBalancingScope.Zone, LoadBalancingScope.Subzone], LoadBalancingMode.Failover) };
        _failover = EndpointSet.Build(ranked, MeshFixtures.ServicePort, _snapshot.EndpointsOf(_service));
        if (_failover.Pick(_random, _client) is null)
        {
            throw new InvalidOperationException("the FAILOVER set picked nothing");
        }
        var route = (Route)Resolve();
        if (route.Kind != RouteKind.Hbone || route.Destination.Port != MeshFixtures.TargetPort || route.Service != _service)
        {
            throw new InvalidOperationException($"unexpected route {route.Kind} to {route.Destination}");
        }
    }

    /// <summary>The whole outbound decision: VIP lookup, cached endpoint set, weighted pick, the HBONE route.</summary>
    // Returns object: Route and EndpointSet are internal, and a public benchmark method cannot expose them.
    [Benchmark]
    public object Resolve() => _resolver.Resolve(_snapshot, _vip, _client);

    /// <summary>Just the cache lookup of the endpoint set (a hit) that <see cref="Resolve"/> does.</summary>
    [Benchmark]
    public object CachedEndpointSet() => _resolver.Endpoints(_snapshot, _service, MeshFixtures.ServicePort);

    /// <summary>Weighted random pick: one random number and a binary search over 10,000 cumulative weights.</summary>
    [Benchmark]
    public (Workload Workload, int TargetPort)? Pick() => _set.Pick(_random);

    /// <summary>A pick under loadBalancing FAILOVER (issue 8): the client's best-rank subset, cached per placement, then the weighted pick.</summary>
    [Benchmark]
    public (Workload Workload, int TargetPort)? PickFailover() => _failover.Pick(_random, _client);
}
