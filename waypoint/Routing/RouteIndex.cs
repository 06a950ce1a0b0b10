using System.Runtime.CompilerServices;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Mesh.State;

namespace Ambient.Waypoint.Routing;

/// <summary>
/// The route kinds of one snapshot, indexed by the service they govern. Built once per snapshot (the snapshot is
/// immutable, so the index is too) and dropped with it.
/// </summary>
internal sealed class RouteIndex
{
    private static readonly ConditionalWeakTable<MeshSnapshot, RouteIndex> s_cache = [];

    private readonly Dictionary<(string Ns, string Name), Service> _services = [];
    private readonly Dictionary<(string Ns, string Name), List<HttpRoute>> _httpRoutes = [];
    // GRPCRoutes are matched as HTTP routes on the call path (GrpcRoutes); these are the converted ones, by identity.
    private readonly Dictionary<HttpRoute, GrpcRoute> _fromGrpc = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, List<VirtualService>> _virtualServices = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, DestinationRule> _destinationRules = new(StringComparer.OrdinalIgnoreCase);

    private RouteIndex(MeshSnapshot snapshot)
    {
        foreach (var s in snapshot.Services)
        {
            _services.TryAdd((s.Namespace, s.Name), s);
        }
        // Ordered by namespace/name: Gateway API breaks ties between equally specific matches by age, then by
        // namespace/name; the snapshot has no creation times, so the name order is the tie-break.
        var grpcRoutes = new List<HttpRoute>();
        foreach (var g in snapshot.ObjectsOf<GrpcRoute>())
        {
            var converted = GrpcRoutes.ToHttpRoute(g);
            _fromGrpc[converted] = g;
            grpcRoutes.Add(converted);
        }
        // One list per Service for both kinds: Istio merges a Service's HTTPRoutes and GRPCRoutes into one route table.
        foreach (var r in snapshot.ObjectsOf<HttpRoute>().Concat(grpcRoutes).OrderBy(r => r.Namespace, StringComparer.Ordinal).ThenBy(r => r.Name, StringComparer.Ordinal))
        {
            foreach (var p in r.ParentRefs)
            {
                if (!p.IsService)
                {
                    continue;
                }
                var key = (p.Namespace ?? r.Namespace, p.Name);
                if (!_httpRoutes.TryGetValue(key, out var list))
                {
                    _httpRoutes[key] = list = [];
                }
                if (!list.Contains(r))
                {
                    list.Add(r);
                }
            }
        }
        foreach (var vs in snapshot.ObjectsOf<VirtualService>().OrderBy(v => v.Namespace, StringComparer.Ordinal).ThenBy(v => v.Name, StringComparer.Ordinal))
        {
            foreach (var h in vs.Hosts)
            {
                string host = Qualify(h, vs.Namespace);
                if (!_virtualServices.TryGetValue(host, out var list))
                {
                    _virtualServices[host] = list = [];
                }
                list.Add(vs);
            }
        }
        foreach (var dr in snapshot.ObjectsOf<DestinationRule>().OrderBy(d => d.Namespace, StringComparer.Ordinal).ThenBy(d => d.Name, StringComparer.Ordinal))
        {
            // A rule in the service's own namespace wins over one elsewhere (Istio's lookup order); otherwise the first.
            string host = Qualify(dr.Host, dr.Namespace);
            if (!_destinationRules.TryGetValue(host, out var existing) || dr.Namespace == NamespaceOf(host) && existing.Namespace != dr.Namespace)
            {
                _destinationRules[host] = dr;
            }
        }
    }

    public static RouteIndex For(MeshSnapshot snapshot) => s_cache.GetValue(snapshot, static s => new RouteIndex(s));

    public Service? Service(string ns, string name) => _services.GetValueOrDefault((ns, name));

    /// <summary>A VirtualService destination host: a short name in <paramref name="ns"/>, or a full hostname.</summary>
    public Service? ServiceByHost(string host, string ns)
    {
        string q = Qualify(host, ns);
        foreach (var s in _services.Values)
        {
            if (string.Equals(s.Hostname, q, StringComparison.OrdinalIgnoreCase))
            {
                return s;
            }
        }
        return null;
    }

    /// <summary>HTTPRoutes whose parentRefs name this Service and this port (or no port).</summary>
    public IReadOnlyList<HttpRoute> HttpRoutesFor(Service service, int port)
    {
        if (!_httpRoutes.TryGetValue((service.Namespace, service.Name), out var all))
        {
            return [];
        }
        List<HttpRoute>? result = null;
        foreach (var r in all)
        {
            foreach (var p in r.ParentRefs)
            {
                if (p.IsService && p.Name == service.Name && (p.Namespace ?? r.Namespace) == service.Namespace && (p.Port is null || p.Port == port))
                {
                    (result ??= []).Add(r);
                    break;
                }
            }
        }
        return result ?? (IReadOnlyList<HttpRoute>)[];
    }

    /// <summary>The object a route of <see cref="HttpRoutesFor"/> came from: itself, or the GRPCRoute it was converted from.</summary>
    public MeshObject Original(HttpRoute route) => _fromGrpc.TryGetValue(route, out var g) ? g : route;

    public IReadOnlyList<VirtualService> VirtualServicesFor(Service service) =>
        _virtualServices.TryGetValue(service.Hostname, out var list) ? list : [];

    public DestinationRule? DestinationRuleFor(Service service) => _destinationRules.GetValueOrDefault(service.Hostname);

    /// <summary>"reviews" in namespace "shop" -> "reviews.shop.svc.cluster.local"; "reviews.shop" -> the same.</summary>
    internal static string Qualify(string host, string ns)
    {
        if (host.Contains('*', StringComparison.Ordinal))
        {
            return host;
        }
        int dots = host.Count(c => c == '.');
        return dots switch
        {
            0 => $"{host}.{ns}.svc.cluster.local",
            1 => $"{host}.svc.cluster.local",
            _ when host.EndsWith(".svc", StringComparison.OrdinalIgnoreCase) => $"{host}.cluster.local",
            _ => host,
        };
    }

    private static string NamespaceOf(string host)
    {
        var parts = host.Split('.');
        return parts.Length > 1 ? parts[1] : "";
    }
}
