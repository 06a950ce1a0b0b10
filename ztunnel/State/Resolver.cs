using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Model;
using Ambient.Mesh.State;

namespace Ambient.Ztunnel.State;

internal enum RouteKind
{
    /// <summary>HTTP/2 CONNECT over mTLS to the destination's (or its waypoint's) port 15008.</summary>
    Hbone,
    /// <summary>A known workload that is not in the mesh: plain TCP to it.</summary>
    Tcp,
    /// <summary>An address the mesh doesn't know: forwarded unchanged, as Istio does.</summary>
    Passthrough,
}

/// <summary>Where an outbound connection goes and how.</summary>
internal sealed record Route(
    RouteKind Kind,
    IPEndPoint Destination,
    Workload? DestinationWorkload,
    Service? Service,
    IPEndPoint? HboneEndpoint,
    string? Authority,
    string[] ExpectedIdentities,
    Workload? Waypoint);

internal sealed class RouteException(string message, string flag = "NR") : Exception(message)
{
    /// <summary>The Istio response flag: NR (no route), UH (no healthy upstream).</summary>
    public string Flag { get; } = flag;
}

/// <summary>Outbound destination resolution: service VIP -> endpoint (port translated), workload IP, or passthrough.</summary>
internal sealed class Resolver(string trustDomain)
{
    private readonly ConditionalWeakTable<MeshSnapshot, ConcurrentDictionary<ServicePort, EndpointSet>> _endpointCache = [];

    // Workloads are immutable snapshot objects: their SPIFFE id (and the one-element array of accepted server ids)
    // is formatted once, not per connection. Entries go away with the workload.
    private readonly ConditionalWeakTable<Workload, string[]> _identities = [];

    public Route Resolve(MeshSnapshot snapshot, IPEndPoint original, Workload? source)
    {
        var service = snapshot.FindServiceByVip(original.Address, source?.Network ?? "");
        if (service is not null)
        {
            if (service.Waypoint is { } swp && WaypointChoice.Find(snapshot, swp) is { } waypoint && !IsSameWorkload(waypoint, source))
            {
                return ViaWaypoint(waypoint, swp, original, service, null);
            }
            if (!service.Ports.ContainsKey(original.Port))
            {
                throw new RouteException($"service {service.Hostname} has no port {original.Port}");
            }
            if (service.LoadBalancing is { Mode: LoadBalancingMode.Passthrough })
            {
                // Istio's PASSTHROUGH: no endpoint choice here; the connection goes to the address the client dialled.
                return new Route(RouteKind.Passthrough, original, null, service, null, null, [], null);
            }
            var set = Endpoints(snapshot, service, original.Port);
            var pick = set.Pick(Random.Shared, source) ?? throw new RouteException(NoEndpoint(service, set), "UH");
            return ToWorkload(snapshot, pick.Workload, pick.TargetPort, service, source);
        }

        var workload = snapshot.FindWorkloadByIp(original.Address, source?.Network ?? "");
        if (workload is not null)
        {
            return ToWorkload(snapshot, workload, original.Port, null, source);
        }
        return new Route(RouteKind.Passthrough, original, null, null, null, null, [], null);
    }

    public EndpointSet Endpoints(MeshSnapshot snapshot, Service service, int port)
    {
        var cache = _endpointCache.GetValue(snapshot, static _ => new ConcurrentDictionary<ServicePort, EndpointSet>(ServicePortComparer.Instance));
        return cache.GetOrAdd(new ServicePort(service, port), static (k, snapshot) => EndpointSet.Build(k.Service, k.Port, snapshot.EndpointsOf(k.Service)), snapshot);
    }

    private Route ToWorkload(MeshSnapshot snapshot, Workload workload, int port, Service? service, Workload? source)
    {
        var ip = PickIp(workload);
        var destination = new IPEndPoint(ip, port);
        if (workload.Waypoint is { } wwp && service is null && WaypointChoice.Find(snapshot, wwp) is { } waypoint && !IsSameWorkload(waypoint, source))
        {
            return ViaWaypoint(waypoint, wwp, destination, null, workload);
        }
        if (workload.Protocol != InboundProtocol.Hbone)
        {
            return new Route(RouteKind.Tcp, destination, workload, service, null, null, [], null);
        }
        string[] expected = service is { SubjectAltNames.IsDefaultOrEmpty: false }
            ? [workload.SpiffeId(trustDomain), .. service.SubjectAltNames]
            : IdentityOf(workload);
        return new Route(
            RouteKind.Hbone,
            destination,
            workload,
            service,
            new IPEndPoint(ip, HboneHeaders.HbonePort),
            HboneHeaders.FormatEndpoint(destination),
            expected,
            null);
    }

    private Route ViaWaypoint(Workload waypoint, GatewayAddress gateway, IPEndPoint original, Service? service, Workload? destination)
    {
        // Through a waypoint the :authority keeps the original (service VIP) address; the waypoint routes it. The
        // gateway reference says on which port the waypoint takes HBONE (hboneMtlsPort, 15008 unless set).
        var ip = PickIp(waypoint);
        return new Route(
            RouteKind.Hbone,
            original,
            destination,
            service,
            new IPEndPoint(ip, gateway.HboneMtlsPort),
            HboneHeaders.FormatEndpoint(original),
            IdentityOf(waypoint),
            waypoint);
    }

    private static string NoEndpoint(Service service, EndpointSet set) =>
        set.Count == 0 || service.LoadBalancing is not { Mode: LoadBalancingMode.Strict } lb
            ? $"service {service.Hostname} has no healthy endpoints"
            : $"service {service.Hostname} has no endpoint in this client's {string.Join(", ", lb.RoutingPreference).ToUpperInvariant()} (loadBalancing mode STRICT)";

    /// <summary>The workload's SPIFFE id as the single accepted server identity (shared, never mutated).</summary>
    public string[] IdentityOf(Workload w)
    {
        if (_identities.TryGetValue(w, out var ids))
        {
            return ids;
        }
        ids = [w.SpiffeId(trustDomain)];
        _identities.AddOrUpdate(w, ids);
        return ids;
    }

    private readonly record struct ServicePort(Service Service, int Port);

    /// <summary>By reference: a snapshot's services are unique objects, and value equality would hash every field.</summary>
    private sealed class ServicePortComparer : IEqualityComparer<ServicePort>
    {
        public static readonly ServicePortComparer Instance = new();

        public bool Equals(ServicePort a, ServicePort b) => ReferenceEquals(a.Service, b.Service) && a.Port == b.Port;

        public int GetHashCode(ServicePort k) => HashCode.Combine(RuntimeHelpers.GetHashCode(k.Service), k.Port);
    }

    private static bool IsSameWorkload(Workload a, Workload? b) => b is not null && a.Uid == b.Uid;

    private static IPAddress PickIp(Workload w)
    {
        // Prefer IPv4 when a workload is dual-stack: both ends of a tunnel then agree on the family.
        foreach (var ip in w.WorkloadIps)
        {
            if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            {
                return ip;
            }
        }
        return w.WorkloadIps[0];
    }
}
