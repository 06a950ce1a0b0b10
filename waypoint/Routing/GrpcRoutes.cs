using System.Collections.Immutable;
using System.Text.RegularExpressions;
using Ambient.Mesh.Model.L7;

namespace Ambient.Waypoint.Routing;

/// <summary>
/// GRPCRoute as Istio applies it: each rule becomes an HTTP route rule on the call's <c>/package.Service/Method</c>
/// path, so GRPCRoutes and HTTPRoutes attached to one Service are matched together by Gateway API precedence (an
/// exact method beats a service prefix, which beats any HTTPRoute prefix shorter than it; headers count as in
/// HTTPRoute). Service and method become an Exact path, a service alone the path prefix <c>/service</c>, a method
/// alone or a RegularExpression match a path expression.
/// </summary>
internal static class GrpcRoutes
{
    public static HttpRoute ToHttpRoute(GrpcRoute route) => new()
    {
        Namespace = route.Namespace,
        Name = route.Name,
        ParentRefs = route.ParentRefs,
        Hostnames = route.Hostnames,
        Rules = [.. route.Rules.Select(ToRule)],
    };

    private static HttpRouteRule ToRule(GrpcRouteRule rule) => new()
    {
        Name = rule.Name,
        // No matches: every call (the same as one match without method or headers).
        Matches = rule.Matches.IsDefaultOrEmpty ? [HttpRouteMatch.Default] : [.. rule.Matches.Select(ToMatch)],
        Filters = rule.Filters,
        BackendRefs = rule.BackendRefs,
        SessionPersistence = rule.SessionPersistence,
    };

    internal static HttpRouteMatch ToMatch(GrpcRouteMatch match) =>
        new(ToPath(match.Method), match.Headers.IsDefault ? [] : match.Headers, [], null);

    internal static HttpPathMatch ToPath(GrpcMethodMatch? m)
    {
        if (m is null || (m.Service is null && m.Method is null))
        {
            return HttpPathMatch.Default;
        }
        if (m.Type == ValueMatchType.Exact)
        {
            if (m.Service is { } service && m.Method is { } method)
            {
                return new HttpPathMatch(PathMatchType.Exact, $"/{service}/{method}", null);
            }
            if (m.Service is { } only)
            {
                return new HttpPathMatch(PathMatchType.PathPrefix, "/" + only, null);
            }
            return Expression($"/[^/]+/{Regex.Escape(m.Method!)}");
        }
        return Expression($"/(?:{m.Service ?? "[^/]+"})/(?:{m.Method ?? "[^/]+"})");
    }

    private static HttpPathMatch Expression(string pattern) =>
        SafeRegex.TryCreate(pattern, ignoreCase: false, out var regex, out _)
            ? new HttpPathMatch(PathMatchType.RegularExpression, pattern, regex)
            // Each part compiled on its own when the route was read; should the joined pattern still be refused (too
            // long), the match can never succeed rather than widen to every call. No request path is empty.
            : new HttpPathMatch(PathMatchType.Exact, "", null);
}
