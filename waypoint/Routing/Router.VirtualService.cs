using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Routing;

internal static partial class Router
{
    /// <summary>
    /// Istio VirtualService <c>http</c> routes: the VirtualServices for the host are taken in namespace/name order
    /// and their routes in order; the first route with a matching <c>match</c> entry (or none) wins.
    /// </summary>
    private static RouteDecision RouteVirtualService(RouteIndex index, IReadOnlyList<VirtualService> virtualServices, Service service, int port, HttpRequest request)
    {
        string path = request.Path.HasValue ? request.Path.Value! : "/";
        foreach (var vs in virtualServices)
        {
            for (int i = 0; i < vs.Http.Length; i++)
            {
                var route = vs.Http[i];
                HttpMatchRequest? matched = null;
                bool any = route.Match.IsDefaultOrEmpty;
                foreach (var m in route.Match)
                {
                    if (Matches(m, path, port, request))
                    {
                        matched = m;
                        any = true;
                        break;
                    }
                }
                if (!any)
                {
                    continue;
                }
                string name = $"VirtualService/{vs.Namespace}/{vs.Name}#{route.Name ?? i.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
                return Apply(index, vs, route, matched, name, service, port, path, request);
            }
        }
        return new RouteDecision { Outcome = RouteOutcome.NoRoute, Status = 404, Detail = $"no VirtualService route matched {request.Method} {path}" };
    }

    internal static bool Matches(HttpMatchRequest m, string path, int port, HttpRequest request)
    {
        if (m.Uri is { } uri && !uri.Matches(path))
        {
            return false;
        }
        if (m.Method is { } method && !method.Matches(request.Method))
        {
            return false;
        }
        if (m.Authority is { } authority && !authority.Matches(request.Host.Value))
        {
            return false;
        }
        if (m.Scheme is { } scheme && !scheme.Matches(request.Scheme))
        {
            return false;
        }
        if (m.Port is { } p && p != port)
        {
            return false;
        }
        foreach (var (name, match) in m.Headers)
        {
            if (!request.Headers.TryGetValue(name, out var values) || values.Count == 0 || !match.Matches(string.Join(',', values.ToArray())))
            {
                return false;
            }
        }
        foreach (var (name, match) in m.WithoutHeaders)
        {
            if (request.Headers.TryGetValue(name, out var values) && values.Count > 0 && match.Matches(string.Join(',', values.ToArray())))
            {
                return false;
            }
        }
        foreach (var (name, match) in m.QueryParams)
        {
            if (!match.Matches(QueryValue(request.QueryString.Value, name)))
            {
                return false;
            }
        }
        if (m.SourceNamespace is { } ns || !m.SourceLabels.IsEmpty)
        {
            var tunnel = request.HttpContext.Features.Get<Hbone.TunnelInfo>();
            if (m.SourceNamespace is { } sourceNs && tunnel?.Peer.Namespace != sourceNs)
            {
                return false;
            }
            foreach (var (k, v) in m.SourceLabels)
            {
                if (tunnel?.SourceWorkload is not { } src || !src.Labels.TryGetValue(k, out var have) || have != v)
                {
                    return false;
                }
            }
        }
        return true;
    }

    private static RouteDecision Apply(RouteIndex index, VirtualService vs, VirtualServiceHttpRoute route, HttpMatchRequest? match, string name, Service service, int port, string path, HttpRequest request)
    {
        var requestEdits = HeaderEdits.From(route.Headers?.Request);
        var responseEdits = HeaderEdits.From(route.Headers?.Response);
        if (route.Redirect is { } redirect)
        {
            return new RouteDecision
            {
                Outcome = RouteOutcome.Respond,
                RouteName = name,
                Status = redirect.RedirectCode,
                Location = RedirectLocation(redirect, match, path, port, request),
                ResponseHeaders = responseEdits,
            };
        }
        if (route.DirectResponse is { } direct)
        {
            return new RouteDecision { Outcome = RouteOutcome.Respond, RouteName = name, Status = direct.Status, Body = direct.Body, ResponseHeaders = responseEdits };
        }
        if (route.Route.IsDefaultOrEmpty)
        {
            return RouteDecision.Error(500, name, "the route has no destination");
        }
        HttpRouteDestination? chosen;
        if (route.Route.Length == 1)
        {
            // A single destination takes all traffic whatever its weight says (Istio).
            chosen = route.Route[0];
        }
        else
        {
            long total = 0;
            foreach (var d in route.Route)
            {
                total += d.Weight;
            }
            if (total == 0)
            {
                return RouteDecision.Error(500, name, "every destination has weight 0");
            }
            long pick = Random.Shared.NextInt64(total);
            chosen = route.Route[^1];
            foreach (var d in route.Route)
            {
                if (pick < d.Weight)
                {
                    chosen = d;
                    break;
                }
                pick -= d.Weight;
            }
        }
        var target = index.ServiceByHost(chosen.Destination.Host, vs.Namespace);
        if (target is null)
        {
            return RouteDecision.Error(503, name, $"destination host {chosen.Destination.Host} is not a known service") with { Outcome = RouteOutcome.Respond };
        }
        int targetPort = chosen.Destination.Port ?? (target.Ports.ContainsKey(port) ? port : target.Ports.Count == 1 ? target.Ports.Keys.First() : port);
        System.Collections.Immutable.ImmutableDictionary<string, string>? subsetLabels = null;
        if (chosen.Destination.Subset is { } subsetName)
        {
            var dr = index.DestinationRuleFor(target);
            var subset = dr?.Subsets.FirstOrDefault(s => s.Name == subsetName);
            if (subset is null)
            {
                // Envoy has no cluster for an undefined subset: 503 with no healthy upstream.
                return RouteDecision.Error(503, name, $"subset {subsetName} of {target.Hostname} is not defined by a DestinationRule") with { Outcome = RouteOutcome.Respond };
            }
            subsetLabels = subset.Labels;
        }
        requestEdits = requestEdits.Then(HeaderEdits.From(chosen.Headers?.Request));
        responseEdits = responseEdits.Then(HeaderEdits.From(chosen.Headers?.Response));
        string? newPath = null;
        if (route.Rewrite is { } rw)
        {
            if (rw.UriRegexRewrite is { } rr)
            {
                newPath = rr.Apply(path);
            }
            else if (rw.Uri is { } uri)
            {
                // With a prefix match the matched prefix is replaced; otherwise the whole path.
                newPath = match?.Uri is { Type: StringMatchType.Prefix } pm ? uri + path[pm.Value.Length..] : uri;
            }
        }
        return new RouteDecision
        {
            Outcome = RouteOutcome.Forward,
            RouteName = name,
            Backend = new Backend(target, targetPort, chosen.Destination.Subset, subsetLabels),
            RequestHeaders = requestEdits,
            ResponseHeaders = responseEdits,
            Host = route.Rewrite?.Authority,
            Path = newPath,
            Mirrors = Mirrors(index, vs, route, port),
            Policy = Governance.RoutePolicy.From(route),
        };
    }

    /// <summary><c>mirror</c> with <c>mirrorPercentage</c> (all requests when unset), and each of <c>mirrors</c>.</summary>
    private static System.Collections.Immutable.ImmutableArray<MirrorTarget> Mirrors(RouteIndex index, VirtualService vs, VirtualServiceHttpRoute route, int port)
    {
        if (route.Mirror is null && route.Mirrors.IsDefaultOrEmpty)
        {
            return [];
        }
        var result = System.Collections.Immutable.ImmutableArray.CreateBuilder<MirrorTarget>();
        if (route.Mirror is { } single && MirrorBackend(index, vs, single, port) is { } b)
        {
            result.Add(new MirrorTarget(b, (route.MirrorPercentage ?? 100) / 100));
        }
        foreach (var m in route.Mirrors.IsDefault ? [] : route.Mirrors)
        {
            if (MirrorBackend(index, vs, m.Destination, port) is { } mb)
            {
                result.Add(new MirrorTarget(mb, (m.Percentage ?? 100) / 100));
            }
        }
        return result.ToImmutable();
    }

    /// <summary>A mirror destination, or null when its host or subset is unknown (the copy is skipped, never the request).</summary>
    private static Backend? MirrorBackend(RouteIndex index, VirtualService vs, Destination d, int port)
    {
        if (index.ServiceByHost(d.Host, vs.Namespace) is not { } target)
        {
            return null;
        }
        int targetPort = d.Port ?? (target.Ports.ContainsKey(port) ? port : target.Ports.Count == 1 ? target.Ports.Keys.First() : port);
        if (d.Subset is not { } subsetName)
        {
            return new Backend(target, targetPort, null, null);
        }
        var subset = index.DestinationRuleFor(target)?.Subsets.FirstOrDefault(s => s.Name == subsetName);
        return subset is null ? null : new Backend(target, targetPort, subsetName, subset.Labels);
    }

    private static string RedirectLocation(HttpRedirect r, HttpMatchRequest? match, string path, int port, HttpRequest request)
    {
        string scheme = r.Scheme ?? request.Scheme;
        string host = r.Authority ?? request.Host.Host;
        int? p = r.Port ?? (r.DerivePort == RedirectPortSelection.FromRequestPort ? request.Host.Port ?? port : null);
        bool defaultPort = p is null || (scheme == "http" && p == 80) || (scheme == "https" && p == 443);
        string newPath = r.Uri ?? (r.PrefixRewrite is { } pr && match?.Uri is { Type: StringMatchType.Prefix } pm ? pr + path[pm.Value.Length..] : path);
        return $"{scheme}://{host}{(defaultPort ? "" : ":" + p)}{newPath}{request.QueryString}";
    }
}
