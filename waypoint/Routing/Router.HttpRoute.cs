using System.Collections.Immutable;
using Ambient.Mesh.Model.L7;
using Microsoft.AspNetCore.Http;

namespace Ambient.Waypoint.Routing;

internal static partial class Router
{
    /// <summary>
    /// Gateway API matching: of every rule match that accepts the request, the most specific wins: an Exact path over
    /// any prefix, a longer prefix over a shorter, then a method match, then more header matches, then more query
    /// matches; ties go to the route listed first (namespace/name order) and the earlier rule.
    /// </summary>
    private static RouteDecision RouteHttp(RouteIndex index, IReadOnlyList<HttpRoute> routes, HttpRequest request, int port)
    {
        HttpRoute? bestRoute = null;
        HttpRouteRule? bestRule = null;
        HttpRouteMatch? bestMatch = null;
        int bestRuleIndex = -1;
        string path = request.Path.HasValue ? request.Path.Value! : "/";
        foreach (var route in routes)
        {
            for (int i = 0; i < route.Rules.Length; i++)
            {
                var rule = route.Rules[i];
                var matches = rule.Matches.IsDefaultOrEmpty ? [HttpRouteMatch.Default] : rule.Matches;
                foreach (var m in matches)
                {
                    if (Matches(m, path, request) && (bestMatch is null || MoreSpecific(m, bestMatch)))
                    {
                        bestRoute = route;
                        bestRule = rule;
                        bestMatch = m;
                        bestRuleIndex = i;
                    }
                }
            }
        }
        if (bestRoute is null)
        {
            return new RouteDecision { Outcome = RouteOutcome.NoRoute, Status = 404, Detail = $"no HTTPRoute or GRPCRoute rule matched {request.Method} {path}" };
        }
        string name = $"{index.Original(bestRoute).Kind}/{bestRoute.Namespace}/{bestRoute.Name}#{bestRule!.Name ?? bestRuleIndex.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        return Apply(index, bestRoute, bestRule, bestMatch!, name, path, request, port);
    }

    internal static bool Matches(HttpRouteMatch m, string path, HttpRequest request)
    {
        if (!PathMatches(m.Path, path))
        {
            return false;
        }
        if (m.Method is { } method && !string.Equals(method, request.Method, StringComparison.Ordinal))
        {
            return false;
        }
        foreach (var h in m.Headers)
        {
            if (!request.Headers.TryGetValue(h.Name, out var values) || values.Count == 0)
            {
                return false;
            }
            // Repeated headers are compared as one comma-joined value, as Envoy does.
            string value = values.Count == 1 ? values[0]! : string.Join(',', values.ToArray());
            if (!ValueMatches(h.Type, h.Value, h.Regex, value))
            {
                return false;
            }
        }
        foreach (var q in m.QueryParams)
        {
            // The first value counts when a parameter repeats (Gateway API leaves it to the implementation; Envoy
            // takes the first).
            if (QueryValue(request.QueryString.Value, q.Name) is not { } value || !ValueMatches(q.Type, q.Value, q.Regex, value))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// The first value of a query parameter, its name compared exactly (Gateway API: query names are
    /// case-sensitive; ASP.NET's own Query collection is not).
    /// </summary>
    internal static string? QueryValue(string? query, string name)
    {
        if (string.IsNullOrEmpty(query))
        {
            return null;
        }
        foreach (var part in query.TrimStart('?').Split('&'))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            string key = Unescape(eq < 0 ? part : part[..eq]);
            if (key == name)
            {
                return eq < 0 ? "" : Unescape(part[(eq + 1)..]);
            }
        }
        return null;
    }

    private static string Unescape(string s) => Uri.UnescapeDataString(s.Replace('+', ' '));

    private static bool ValueMatches(ValueMatchType type, string expected, SafeRegex? regex, string value) =>
        type == ValueMatchType.Exact ? string.Equals(expected, value, StringComparison.Ordinal) : regex!.IsMatch(value);

    internal static bool PathMatches(HttpPathMatch m, string path) => m.Type switch
    {
        PathMatchType.Exact => string.Equals(path, m.Value, StringComparison.Ordinal),
        PathMatchType.PathPrefix => PrefixMatches(m.Value, path),
        PathMatchType.RegularExpression => m.Regex!.IsMatch(path),
        _ => false,
    };

    /// <summary>Element-wise prefix: "/foo" matches "/foo", "/foo/" and "/foo/bar", never "/foobar"; a trailing "/" in the prefix is ignored.</summary>
    internal static bool PrefixMatches(string prefix, string path)
    {
        string p = prefix.Length > 1 && prefix.EndsWith('/') ? prefix[..^1] : prefix;
        if (p == "/")
        {
            return true;
        }
        return path.StartsWith(p, StringComparison.Ordinal) && (path.Length == p.Length || path[p.Length] == '/');
    }

    /// <summary>Whether <paramref name="a"/> takes precedence over <paramref name="b"/> (strictly).</summary>
    internal static bool MoreSpecific(HttpRouteMatch a, HttpRouteMatch b)
    {
        int ka = PathRank(a.Path), kb = PathRank(b.Path);
        if (ka != kb)
        {
            return ka > kb;
        }
        if (a.Path.Type == PathMatchType.PathPrefix && a.Path.Value.Length != b.Path.Value.Length)
        {
            return a.Path.Value.Length > b.Path.Value.Length;
        }
        if ((a.Method is not null) != (b.Method is not null))
        {
            return a.Method is not null;
        }
        if (a.Headers.Length != b.Headers.Length)
        {
            return a.Headers.Length > b.Headers.Length;
        }
        return a.QueryParams.Length > b.QueryParams.Length;
    }

    // Exact paths beat prefixes; Gateway API puts regular expressions at the implementation's discretion, and Envoy
    // (as Istio configures it) orders them between the two.
    private static int PathRank(HttpPathMatch p) => p.Type switch
    {
        PathMatchType.Exact => 3,
        PathMatchType.RegularExpression => 2,
        _ => 1,
    };

    private static RouteDecision Apply(RouteIndex index, HttpRoute route, HttpRouteRule rule, HttpRouteMatch match, string name, string path, HttpRequest request, int port)
    {
        var requestEdits = HeaderEdits.None;
        var responseEdits = HeaderEdits.None;
        string? host = null;
        string? newPath = null;
        var mirrors = ImmutableArray.CreateBuilder<MirrorTarget>();
        foreach (var f in rule.Filters)
        {
            switch (f)
            {
                case RequestHeaderModifierFilter rh:
                    requestEdits = requestEdits.Then(HeaderEdits.From(rh.Modifier));
                    break;
                case ResponseHeaderModifierFilter rs:
                    responseEdits = responseEdits.Then(HeaderEdits.From(rs.Modifier));
                    break;
                case RequestRedirectFilter redirect:
                    return new RouteDecision
                    {
                        Outcome = RouteOutcome.Respond,
                        RouteName = name,
                        Status = redirect.StatusCode,
                        Location = RedirectLocation(redirect, match, path, request),
                        ResponseHeaders = responseEdits,
                    };
                case UrlRewriteFilter rewrite:
                    host = rewrite.Hostname ?? host;
                    if (rewrite.Path is { } pm)
                    {
                        newPath = ModifyPath(pm, match, path);
                    }
                    break;
                case RequestMirrorFilter mirror:
                    // A mirror whose Service does not exist is left out: copies must never affect the request itself.
                    if (index.Service(mirror.Backend.Namespace ?? route.Namespace, mirror.Backend.Name) is { } shadow && mirror.Backend.IsService)
                    {
                        mirrors.Add(new MirrorTarget(new Backend(shadow, mirror.Backend.Port ?? port, null, null), mirror.Share));
                    }
                    break;
                default:
                    return RouteDecision.Error(500, name, $"filter {f.Type} is not supported by this waypoint");
            }
        }
        if (rule.BackendRefs.IsDefaultOrEmpty)
        {
            return RouteDecision.Error(500, name, "the rule has no backendRefs");
        }
        var chosen = PickWeighted(rule.BackendRefs);
        if (chosen is null)
        {
            return RouteDecision.Error(500, name, "every backendRef has weight 0");
        }
        var b = chosen.Backend;
        if (!b.IsService)
        {
            return RouteDecision.Error(500, name, $"backendRef kind {b.Kind} is not supported");
        }
        var service = index.Service(b.Namespace ?? route.Namespace, b.Name);
        if (service is null)
        {
            return RouteDecision.Error(500, name, $"backendRef Service {b.Namespace ?? route.Namespace}/{b.Name} does not exist");
        }
        foreach (var f in chosen.Filters)
        {
            if (f is RequestHeaderModifierFilter brh)
            {
                requestEdits = requestEdits.Then(HeaderEdits.From(brh.Modifier));
            }
            else if (f is ResponseHeaderModifierFilter brs)
            {
                responseEdits = responseEdits.Then(HeaderEdits.From(brs.Modifier));
            }
        }
        return new RouteDecision
        {
            Outcome = RouteOutcome.Forward,
            RouteName = name,
            Backend = new Backend(service, b.Port ?? port, null, null),
            RequestHeaders = requestEdits,
            ResponseHeaders = responseEdits,
            Host = host,
            Path = newPath,
            Mirrors = mirrors.ToImmutable(),
            Policy = Governance.RoutePolicy.From(rule),
        };
    }

    private static WeightedBackendRef? PickWeighted(ImmutableArray<WeightedBackendRef> refs)
    {
        long total = 0;
        foreach (var r in refs)
        {
            total += r.Weight;
        }
        if (total == 0)
        {
            return null;
        }
        long pick = Random.Shared.NextInt64(total);
        foreach (var r in refs)
        {
            if (pick < r.Weight)
            {
                return r;
            }
            pick -= r.Weight;
        }
        return refs[^1];
    }

    /// <summary>ReplaceFullPath, or ReplacePrefixMatch (only the part the rule's PathPrefix matched is replaced).</summary>
    internal static string ModifyPath(PathModifier modifier, HttpRouteMatch match, string path)
    {
        if (modifier.Type == PathModifierType.ReplaceFullPath)
        {
            return modifier.Value;
        }
        string prefix = match.Path.Value.Length > 1 && match.Path.Value.EndsWith('/') ? match.Path.Value[..^1] : match.Path.Value;
        if (prefix == "/")
        {
            prefix = "";
        }
        string rest = path.Length >= prefix.Length ? path[prefix.Length..] : "";
        string replacement = modifier.Value;
        if (replacement.EndsWith('/') && rest.StartsWith('/'))
        {
            replacement = replacement[..^1];
        }
        string result = replacement + rest;
        return result.Length == 0 ? "/" : result[0] == '/' ? result : "/" + result;
    }

    private static string RedirectLocation(RequestRedirectFilter r, HttpRouteMatch match, string path, HttpRequest request)
    {
        string scheme = r.Scheme ?? request.Scheme;
        var requestHost = request.Host;
        string host = r.Hostname ?? requestHost.Host;
        int? port = r.Port;
        if (port is null && r.Scheme is null)
        {
            port = requestHost.Port;
        }
        // The scheme's default port is left out of Location (Gateway API).
        bool defaultPort = port is null || (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
        string p = r.Path is { } pm ? ModifyPath(pm, match, path) : path;
        return $"{scheme}://{host}{(defaultPort ? "" : ":" + port)}{p}{request.QueryString}";
    }
}
