using Ambient.Mesh.State;
using Ambient.Waypoint.Hbone;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Routing;

/// <summary>
/// Chooses where a request goes, with Istio's precedence: the HTTPRoutes whose parent is the destination Service
/// (GAMMA) win; without any, the VirtualServices for its hostname; without either, the service itself on the port
/// the client dialled. When routes exist but none matches, the answer is 404 with flag NR.
/// </summary>
internal static partial class Router
{
    public static RouteDecision Route(MeshSnapshot snapshot, TunnelInfo tunnel, HttpRequest request)
    {
        var index = RouteIndex.For(snapshot);
        int port = tunnel.Authority.Port;
        if (tunnel.Service is { } service)
        {
            var routes = index.HttpRoutesFor(service, port);
            if (routes.Count > 0)
            {
                return RouteHttp(index, routes, request, port);
            }
            var virtualServices = index.VirtualServicesFor(service);
            if (virtualServices.Count > 0)
            {
                return RouteVirtualService(index, virtualServices, service, port, request);
            }
            return new RouteDecision { Outcome = RouteOutcome.Forward, Backend = new Backend(service, port, null, null) };
        }
        return new RouteDecision { Outcome = RouteOutcome.Forward, Workload = tunnel.Workload, WorkloadPort = port };
    }
}
