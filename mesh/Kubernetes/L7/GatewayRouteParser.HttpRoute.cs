using System.Collections.Immutable;
using Ambient.Mesh.Model.L7;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes.L7;

internal sealed partial class GatewayRouteParser
{
    private static readonly string[] HttpRuleKeys = ["name", "matches", "filters", "backendRefs", "timeouts", "retry", "sessionPersistence"];
    private static readonly string[] HttpMatchKeys = ["path", "headers", "queryParams", "method"];
    private static readonly string[] PathMatchKeys = ["type", "value"];
    private static readonly string[] QueryParamKeys = ["type", "name", "value"];
    private static readonly string[] TimeoutKeys = ["request", "backendRequest"];
    private static readonly string[] RetryKeys = ["codes", "attempts", "backoff"];

    private static readonly (string, PathMatchType)[] PathMatchTypes =
    [
        ("Exact", PathMatchType.Exact), ("PathPrefix", PathMatchType.PathPrefix), ("RegularExpression", PathMatchType.RegularExpression),
    ];

    /// <summary>What an omitted <c>rules</c> means: one rule that matches every request and has no backends.</summary>
    private static readonly HttpRouteRule DefaultRule = new() { Matches = [HttpRouteMatch.Default] };

    public HttpRoute HttpRoute(YamlNode spec, string path, string ns, string name)
    {
        ImmutableArray<HttpRouteRule> rules = [DefaultRule];
        (ImmutableArray<ParentReference> parents, ImmutableArray<string> hostnames, string? useDefaultGateways) = RouteSpec(spec, path, (v, p) =>
        {
            if (v is YamlSequenceNode { Children.Count: 0 })
            {
                s.Error(v, p, "must have at least one rule (omit the field for the default rule)");
            }
            rules = s.List(v, p, RuleLimit, HttpRule);
            CheckRules(v, p, rules, r => r.Name, r => r.Matches.Length);
        });
        return new HttpRoute
        {
            Namespace = ns,
            Name = name,
            ParentRefs = parents,
            Hostnames = hostnames,
            Rules = rules,
            UseDefaultGateways = useDefaultGateways,
        };
    }

    private HttpRouteRule? HttpRule(YamlNode node, string path)
    {
        var rule = new HttpRouteRule { Matches = [HttpRouteMatch.Default] };
        YamlNode? matchesNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "name":
                    rule = rule with { Name = RuleName(v, p) };
                    break;
                case "matches":
                    matchesNode = v;
                    ImmutableArray<HttpRouteMatch> matches = s.List(v, p, MatchLimit, HttpMatch);
                    // An explicit empty list is defaulted by the API server like an omitted one.
                    rule = rule with { Matches = matches.IsEmpty ? [HttpRouteMatch.Default] : matches };
                    break;
                case "filters":
                    rule = rule with { Filters = Filters(v, p, HttpFilterTypes) };
                    break;
                case "backendRefs":
                    rule = rule with { BackendRefs = BackendRefs(v, p, HttpFilterTypes) };
                    break;
                case "timeouts":
                    rule = rule with { Timeouts = Timeouts(v, p) };
                    break;
                case "retry":
                    rule = rule with { Retry = Retry(v, p) };
                    break;
                case "sessionPersistence":
                    rule = rule with { SessionPersistence = SessionPersistence(v, p) };
                    break;
                default:
                    s.Unknown(k, path, HttpRuleKeys);
                    break;
            }
        }
        CheckRuleFilters(rule, node, path);
        return rule;
    }

    /// <summary>The rule-level CEL checks of HTTPRoute.</summary>
    private void CheckRuleFilters(HttpRouteRule rule, YamlNode node, string path)
    {
        bool redirect = false, prefixRewrite = false;
        foreach (RouteFilter f in rule.Filters)
        {
            redirect |= f is RequestRedirectFilter;
            prefixRewrite |= IsPrefixRewrite(f);
        }
        if (redirect && !rule.BackendRefs.IsEmpty)
        {
            s.Error(node, Child(path, "filters"), "a RequestRedirect filter must not be used together with backendRefs");
        }
        foreach (WeightedBackendRef b in rule.BackendRefs)
        {
            foreach (RouteFilter f in b.Filters)
            {
                prefixRewrite |= IsPrefixRewrite(f);
            }
        }
        // ReplacePrefixMatch replaces what a PathPrefix match matched, so there must be exactly one such match.
        if (prefixRewrite && (rule.Matches.Length != 1 || rule.Matches[0].Path.Type != PathMatchType.PathPrefix))
        {
            s.Error(node, Child(path, "matches"), "when a RequestRedirect or URLRewrite filter uses path.replacePrefixMatch, exactly one PathPrefix match must be specified");
        }
    }

    private static bool IsPrefixRewrite(RouteFilter f) => f switch
    {
        RequestRedirectFilter { Path.Type: PathModifierType.ReplacePrefixMatch } => true,
        UrlRewriteFilter { Path.Type: PathModifierType.ReplacePrefixMatch } => true,
        _ => false,
    };

    private HttpRouteMatch? HttpMatch(YamlNode node, string path)
    {
        HttpRouteMatch match = HttpRouteMatch.Default;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "path":
                    match = match with { Path = PathMatch(v, p) ?? match.Path };
                    break;
                case "headers":
                    match = match with { Headers = HeaderMatches(v, p, checkValueShape: true) };
                    break;
                case "queryParams":
                    ImmutableArray<QueryParamMatch> qs = s.List(v, p, MaxHeaderEntries, QueryParam);
                    match = match with { QueryParams = FirstOfEachName(qs, q => q.Name, v, p, StringComparer.Ordinal) };
                    break;
                case "method":
                    match = match with { Method = Method(v, p) };
                    break;
                default:
                    s.Unknown(k, path, HttpMatchKeys);
                    break;
            }
        }
        return match;
    }

    private HttpPathMatch? PathMatch(YamlNode node, string path)
    {
        PathMatchType type = PathMatchType.PathPrefix;
        string value = "/";
        YamlNode valueNode = node;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "type":
                    type = s.Enum(v, p, PathMatchTypes) ?? type;
                    break;
                case "value":
                    valueNode = v;
                    value = s.String(v, p, 0, 1024) ?? value;
                    break;
                default:
                    s.Unknown(k, path, PathMatchKeys);
                    break;
            }
        }
        string vp = Child(path, "value");
        if (type == PathMatchType.RegularExpression)
        {
            return s.CompileRegex(value, valueNode, vp) is { } regex ? new HttpPathMatch(type, value, regex) : null;
        }
        if (PathProblem(value) is { } problem)
        {
            s.Error(valueNode, vp, $"'{value}' {problem}");
            return null;
        }
        return new HttpPathMatch(type, value, null);
    }

    /// <summary>The Gateway API's rules for Exact and PathPrefix values: an absolute, normalised path.</summary>
    private static string? PathProblem(string value)
    {
        if (!value.StartsWith('/'))
        {
            return "must be an absolute path starting with '/'";
        }
        foreach (string bad in (string[])["//", "/./", "/../", "%2f", "%2F", "#"])
        {
            if (value.Contains(bad, StringComparison.Ordinal))
            {
                return $"must not contain '{bad}'";
            }
        }
        if (value.EndsWith("/..", StringComparison.Ordinal) || value.EndsWith("/.", StringComparison.Ordinal))
        {
            return "must not end with '/.' or '/..'";
        }
        return KubeNames.PathChars().IsMatch(value) ? null : "contains characters not allowed in a path (percent-encode them)";
    }

    private QueryParamMatch? QueryParam(YamlNode node, string path)
    {
        (ValueMatchType type, string? name, string? value, YamlNode? valueNode) =
            NameValueMatch(node, path, QueryParamKeys, 1024, checkValueShape: false);
        if (name is null || value is null)
        {
            return null;
        }
        SafeRegex? regex = type == ValueMatchType.RegularExpression ? s.CompileRegex(value, valueNode!, Child(path, "value")) : null;
        return type == ValueMatchType.RegularExpression && regex is null ? null : new QueryParamMatch(type, name, value, regex);
    }

    private HttpRouteTimeouts? Timeouts(YamlNode node, string path)
    {
        TimeSpan? request = null, backend = null;
        YamlNode? backendNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "request":
                    request = s.GatewayDuration(v, p);
                    break;
                case "backendRequest":
                    backendNode = v;
                    backend = s.GatewayDuration(v, p);
                    break;
                default:
                    s.Unknown(k, path, TimeoutKeys);
                    break;
            }
        }
        // One attempt cannot outlast the whole request (unless the request timeout is disabled with 0s).
        if (request is { } req && req != TimeSpan.Zero && backend > req)
        {
            s.Error(backendNode, Child(path, "backendRequest"), "backendRequest timeout cannot be longer than request timeout");
        }
        return new HttpRouteTimeouts(request, backend);
    }

    private HttpRouteRetry? Retry(YamlNode node, string path)
    {
        ImmutableArray<int> codes = [];
        int? attempts = null;
        TimeSpan? backoff = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "codes":
                    codes = s.Values(v, p, int.MaxValue, (n, q) => s.Int(n, q, 400, 599));
                    for (int i = 1; i < codes.Length; i++)
                    {
                        if (codes.IndexOf(codes[i]) < i)
                        {
                            s.Error(v, Index(p, i), $"duplicate value {codes[i]}");
                        }
                    }
                    break;
                case "attempts":
                    // Gateway API v1.5 allowed 0 (retries off, as in Istio); later CRDs require >= 1. Both are read.
                    attempts = s.Int(v, p, 0);
                    break;
                case "backoff":
                    backoff = s.GatewayDuration(v, p);
                    break;
                default:
                    s.Unknown(k, path, RetryKeys);
                    break;
            }
        }
        return new HttpRouteRetry(codes, attempts, backoff);
    }
}
