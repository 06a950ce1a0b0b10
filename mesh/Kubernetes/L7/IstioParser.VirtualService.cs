using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model.L7;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes.L7;

internal sealed partial class IstioParser
{
    private static readonly string[] VirtualServiceKeys = ["hosts", "gateways", "http", "tls", "tcp", "exportTo"];
    private static readonly string[] HttpRouteKeys =
    [
        "name", "match", "route", "redirect", "directResponse", "delegate", "rewrite", "timeout", "retries", "fault",
        "mirror", "mirrorPercentage", "mirrorPercent", "mirror_percent", "mirrors", "corsPolicy", "headers",
    ];
    private static readonly string[] MatchRequestKeys =
    [
        "name", "uri", "scheme", "method", "authority", "headers", "port", "sourceLabels", "gateways", "queryParams",
        "ignoreUriCase", "withoutHeaders", "sourceNamespace", "statPrefix",
    ];
    private static readonly string[] StringMatchKeys = ["exact", "prefix", "regex"];
    private static readonly string[] DestinationKeys = ["host", "subset", "port"];
    private static readonly string[] RouteDestinationKeys = ["destination", "weight", "headers"];
    private static readonly string[] L4RouteDestinationKeys = ["destination", "weight"];
    private static readonly string[] HeadersKeys = ["request", "response"];
    private static readonly string[] HeaderOperationKeys = ["set", "add", "remove"];
    private static readonly string[] RedirectKeys = ["uri", "authority", "port", "derivePort", "scheme", "redirectCode", "prefixRewrite"];
    private static readonly string[] DirectResponseKeys = ["status", "body"];
    private static readonly string[] RewriteKeys = ["uri", "authority", "uriRegexRewrite"];
    private static readonly string[] RetryKeys = ["attempts", "perTryTimeout", "retryOn", "retryRemoteLocalities", "retryIgnorePreviousHosts", "backoff"];
    private static readonly string[] FaultKeys = ["delay", "abort"];
    private static readonly string[] DelayKeys = ["fixedDelay", "exponentialDelay", "percent", "percentage"];
    private static readonly string[] AbortKeys = ["httpStatus", "grpcStatus", "http2Error", "percentage"];
    private static readonly string[] MirrorPolicyKeys = ["destination", "percentage"];
    private static readonly string[] CorsPolicyKeys =
        ["allowOrigins", "allowOrigin", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials", "unmatchedPreflights"];
    private static readonly string[] TlsRouteKeys = ["match", "route"];
    private static readonly string[] TlsMatchKeys = ["sniHosts", "destinationSubnets", "port", "sourceLabels", "gateways", "sourceNamespace"];
    private static readonly string[] L4MatchKeys = ["destinationSubnets", "port", "sourceLabels", "gateways", "sourceNamespace", "sourceSubnet"];

    private static readonly string[] HttpMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"];

    private static readonly string[] PseudoHeaders = [":method", ":scheme", ":authority", ":path", ":status"];

    /// <summary>Envoy's retry-on conditions (x-envoy-retry-on and x-envoy-retry-grpc-on) that Istio accepts.</summary>
    private static readonly string[] RetryOnPolicies =
    [
        "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx", "refused-stream",
        "retriable-status-codes", "retriable-headers", "envoy-ratelimited", "http3-post-connect-failure",
        "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
    ];

    /// <summary>gRPC status names in code order (0-16).</summary>
    private static readonly string[] GrpcStatusNames =
    [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
        "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ];

    private const int MaxDirectResponseBody = 1024 * 1024;

    public VirtualService? VirtualService(YamlNode spec, string path, string ns, string name)
    {
        var vs = new VirtualService { Namespace = ns, Name = name };
        YamlNode? hostsNode = null, httpNode = null, tlsNode = null, tcpNode = null, gatewaysNode = null, exportNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(spec, path))
        {
            switch (key)
            {
                case "hosts":
                    hostsNode = v;
                    break;
                case "gateways":
                    gatewaysNode = v;
                    vs = vs with { Gateways = Gateways(v, p) };
                    break;
                case "http":
                    httpNode = v;
                    break;
                case "tls":
                    tlsNode = v;
                    break;
                case "tcp":
                    tcpNode = v;
                    break;
                case "exportTo":
                    exportNode = v;
                    break;
                default:
                    s.Unknown(k, path, VirtualServiceKeys);
                    break;
            }
        }
        // Gateways first: whether the rules apply to the mesh decides which hosts are allowed.
        if (hostsNode is not null)
        {
            vs = vs with { Hosts = VirtualServiceHosts(hostsNode, Child(path, "hosts"), vs.AppliesToMesh) };
        }
        bool isDelegate = vs.Hosts.IsEmpty;
        if (httpNode is not null)
        {
            vs = vs with { Http = s.List(httpNode, Child(path, "http"), int.MaxValue, (n, p) => HttpRoute(n, p, isDelegate, vs.AppliesToMesh)) };
        }
        if (tlsNode is not null)
        {
            vs = vs with { Tls = s.List(tlsNode, Child(path, "tls"), int.MaxValue, (n, p) => TlsRoute(n, p, vs.Hosts)) };
        }
        if (tcpNode is not null)
        {
            vs = vs with { Tcp = s.List(tcpNode, Child(path, "tcp"), int.MaxValue, TcpRoute) };
        }
        if (exportNode is not null)
        {
            vs = vs with { ExportTo = ExportTo(exportNode, Child(path, "exportTo"), ns, allowNone: false) };
        }
        if (isDelegate)
        {
            // A VirtualService without hosts is a delegate: only HTTP routes, reached from a root's delegate.
            if (gatewaysNode is not null && !vs.Gateways.IsEmpty)
            {
                s.Error(gatewaysNode, Child(path, "gateways"), "a delegate virtual service (no hosts) must not name gateways");
            }
            if (tlsNode is not null && !vs.Tls.IsEmpty)
            {
                s.Error(tlsNode, Child(path, "tls"), "a delegate virtual service (no hosts) cannot have tls routes");
            }
            if (tcpNode is not null && !vs.Tcp.IsEmpty)
            {
                s.Error(tcpNode, Child(path, "tcp"), "a delegate virtual service (no hosts) cannot have tcp routes");
            }
        }
        if (httpNode is null && tlsNode is null && tcpNode is null)
        {
            s.Error(spec, path, "http, tcp or tls routes must be provided");
        }
        return vs;
    }

    private ImmutableArray<string> VirtualServiceHosts(YamlNode node, string path, bool appliesToMesh)
    {
        ImmutableArray<string> hosts = s.Strings(node, path, check: (v, p) =>
        {
            string? h = s.String(v, p);
            if (h is null)
            {
                return null;
            }
            if (WildcardDomainProblem(h) is { } problem && !IsIp(h))
            {
                s.Error(v, p, problem);
                return null;
            }
            if (h == "*" && appliesToMesh)
            {
                s.Error(v, p, "the wildcard host * is not allowed for virtual services bound to the mesh");
                return null;
            }
            return h;
        });
        for (int i = 0; i < hosts.Length; i++)
        {
            for (int j = i + 1; j < hosts.Length; j++)
            {
                if (HostCovers(hosts[i], hosts[j]) || HostCovers(hosts[j], hosts[i]))
                {
                    s.Error(node, path, $"duplicate hosts in virtual service: {hosts[i]} & {hosts[j]}");
                }
            }
        }
        return hosts;
    }

    /// <summary>True when every name <paramref name="inner"/> matches is also matched by <paramref name="outer"/>.</summary>
    private static bool HostCovers(string outer, string inner) =>
        string.Equals(outer, inner, StringComparison.OrdinalIgnoreCase)
        || outer == "*"
        || (outer.StartsWith('*') && inner.EndsWith(outer[1..], StringComparison.OrdinalIgnoreCase) && inner.Length > outer.Length - 1);

    private VirtualServiceHttpRoute? HttpRoute(YamlNode node, string path, bool inDelegate, bool appliesToMesh)
    {
        var route = new VirtualServiceHttpRoute();
        var present = new Dictionary<string, YamlScalarNode>(StringComparer.Ordinal);
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            present[key] = k;
            switch (key)
            {
                case "name":
                    route = route with { Name = s.String(v, p) };
                    break;
                case "match":
                    route = route with { Match = s.List(v, p, int.MaxValue, (n, mp) => MatchRequest(n, mp, appliesToMesh)) };
                    break;
                case "route":
                    route = route with { Route = HttpDestinations(v, p) };
                    break;
                case "redirect":
                    route = route with { Redirect = Redirect(v, p) };
                    break;
                case "directResponse":
                    route = route with { DirectResponse = DirectResponse(v, p) };
                    break;
                case "delegate":
                    route = route with { Delegate = Delegate(v, p) };
                    break;
                case "rewrite":
                    route = route with { Rewrite = Rewrite(v, p) };
                    break;
                case "timeout":
                    route = route with { Timeout = s.IstioDuration(v, p) };
                    break;
                case "retries":
                    route = route with { Retries = Retry(v, p) };
                    break;
                case "fault":
                    route = route with { Fault = Fault(v, p) };
                    break;
                case "mirror":
                    route = route with { Mirror = Destination(v, p) };
                    break;
                case "mirrorPercentage":
                    route = route with { MirrorPercentage = Percent(v, p) };
                    break;
                case "mirrorPercent":
                case "mirror_percent":
                    // Deprecated integer form; folded into MirrorPercentage unless that is also given.
                    s.Warning(k, p, $"{key} is deprecated; use mirrorPercentage");
                    if (s.Long(v, p, 0, 100) is long legacy && route.MirrorPercentage is null)
                    {
                        route = route with { MirrorPercentage = legacy };
                    }
                    break;
                case "mirrors":
                    route = route with { Mirrors = s.List(v, p, int.MaxValue, MirrorPolicy) };
                    break;
                case "corsPolicy":
                    route = route with { CorsPolicy = Cors(v, p) };
                    break;
                case "headers":
                    route = route with { Headers = HeadersPolicy(v, p) };
                    break;
                default:
                    s.Unknown(k, path, HttpRouteKeys);
                    break;
            }
        }
        CheckHttpRoute(route, present, node, path, inDelegate);
        return route;
    }

    /// <summary>What a rule does: exactly one of route, redirect, direct response or delegate, with its limits.</summary>
    private void CheckHttpRoute(VirtualServiceHttpRoute route, Dictionary<string, YamlScalarNode> present, YamlNode node, string path, bool inDelegate)
    {
        void Conflict(string field, string message)
        {
            if (present.TryGetValue(field, out YamlScalarNode? key))
            {
                s.Error(key, Child(path, field), message);
            }
        }
        bool hasRoute = present.ContainsKey("route") && !route.Route.IsEmpty;
        if (present.ContainsKey("delegate"))
        {
            if (inDelegate)
            {
                Conflict("delegate", "a delegate's HTTP route cannot delegate again");
            }
            Conflict("redirect", "a route that delegates must not also redirect");
            if (hasRoute)
            {
                Conflict("route", "a route that delegates must not also have destinations");
            }
        }
        else if (present.ContainsKey("redirect"))
        {
            if (hasRoute)
            {
                Conflict("route", "an HTTP route cannot have both route and redirect");
            }
            Conflict("fault", "an HTTP route cannot have both fault and redirect");
            Conflict("rewrite", "an HTTP route cannot have both rewrite and redirect");
            Conflict("directResponse", "an HTTP route cannot have both redirect and directResponse");
        }
        else if (present.ContainsKey("directResponse"))
        {
            if (hasRoute)
            {
                Conflict("route", "an HTTP route cannot have both route and directResponse");
            }
            Conflict("fault", "an HTTP route cannot have both fault and directResponse");
            Conflict("rewrite", "an HTTP route cannot have both rewrite and directResponse");
        }
        else if (!hasRoute)
        {
            s.Error(node, Child(path, "route"), "required: an HTTP route needs a route, redirect, directResponse or delegate");
        }
        if (present.ContainsKey("mirror") && present.ContainsKey("mirrors"))
        {
            Conflict("mirrors", "an HTTP route cannot have both mirror and mirrors");
        }
        if (route.Redirect?.PrefixRewrite is not null)
        {
            foreach (HttpMatchRequest m in route.Match)
            {
                if (m.Uri is { Type: not StringMatchType.Prefix })
                {
                    Conflict("redirect", "redirect.prefixRewrite requires every URI match to be a prefix match");
                    break;
                }
            }
        }
        // Only one place may set the authority: rewrite.authority or a request header :authority/host.
        string? authority = route.Rewrite?.Authority;
        HeaderOperations? request = route.Headers?.Request;
        foreach (ImmutableDictionary<string, string> ops in request is null ? [] : (ImmutableDictionary<string, string>[])[request.Set, request.Add])
        {
            foreach ((string name, string value) in ops)
            {
                if (!IsAuthorityHeader(name))
                {
                    continue;
                }
                if (authority is not null)
                {
                    Conflict("headers", $"the authority cannot be set more than once (have '{authority}', also setting '{value}')");
                }
                authority = value;
            }
        }
    }

    private static bool IsAuthorityHeader(string name) =>
        string.Equals(name, ":authority", StringComparison.OrdinalIgnoreCase) || string.Equals(name, "host", StringComparison.OrdinalIgnoreCase);

    private HttpMatchRequest? MatchRequest(YamlNode node, string path, bool appliesToMesh)
    {
        var match = new HttpMatchRequest();
        YamlNode? uriNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "name":
                    match = match with { Name = s.String(v, p) };
                    break;
                case "uri":
                    uriNode = v;
                    break;
                case "scheme":
                    match = match with { Scheme = StringMatch(v, p, allowEmptyPrefix: false) };
                    break;
                case "method":
                    match = match with { Method = StringMatch(v, p, allowEmptyPrefix: false) };
                    break;
                case "authority":
                    match = match with { Authority = StringMatch(v, p, allowEmptyPrefix: false) };
                    break;
                case "headers":
                    match = match with { Headers = HeaderMatches(v, p, appliesToMesh, without: false) };
                    break;
                case "withoutHeaders":
                    match = match with { WithoutHeaders = HeaderMatches(v, p, appliesToMesh, without: true) };
                    break;
                case "queryParams":
                    match = match with { QueryParams = s.Map(v, p, (qk, qn, qv, qp) => StringMatch(qv, qp, allowEmptyPrefix: false, emptyIsPresence: true)) };
                    break;
                case "port":
                    match = match with { Port = Port(v, p) };
                    break;
                case "sourceLabels":
                    match = match with { SourceLabels = Labels(v, p) };
                    break;
                case "gateways":
                    match = match with { Gateways = Gateways(v, p) };
                    break;
                case "ignoreUriCase":
                    match = match with { IgnoreUriCase = s.Bool(v, p) ?? false };
                    break;
                case "sourceNamespace":
                    match = match with { SourceNamespace = NamespaceName(v, p) };
                    break;
                case "statPrefix":
                    match = match with { StatPrefix = s.String(v, p) };
                    break;
                default:
                    s.Unknown(k, path, MatchRequestKeys);
                    break;
            }
        }
        // The URI is read last so ignoreUriCase (wherever it is written) compiles its regex case-insensitively.
        if (uriNode is not null)
        {
            match = match with { Uri = StringMatch(uriNode, Child(path, "uri"), allowEmptyPrefix: true, ignoreCase: match.IgnoreUriCase) };
        }
        return match;
    }

    /// <summary>
    /// Header matches keyed by name. Names are HTTP tokens or the HTTP/2 pseudo-headers; <c>@request.auth.claims</c>
    /// routing is for gateways only. An empty match (<c>{}</c>) means "present"; in withoutHeaders so does <c>regex: "*"</c>.
    /// </summary>
    private ImmutableDictionary<string, IstioStringMatch> HeaderMatches(YamlNode node, string path, bool appliesToMesh, bool without)
    {
        // Header names compare case-insensitively: key the map by the lower-case name.
        var b = ImmutableDictionary.CreateBuilder<string, IstioStringMatch>(StringComparer.Ordinal);
        foreach ((string name, IstioStringMatch match) in HeaderMatchesAsWritten(node, path, appliesToMesh, without))
        {
            string lower = name.ToLowerInvariant();
            if (!b.TryAdd(lower, match))
            {
                s.Error(node, path, $"header '{name}' is matched twice (names are case-insensitive)");
            }
        }
        return b.ToImmutable();
    }

    private ImmutableDictionary<string, IstioStringMatch> HeaderMatchesAsWritten(YamlNode node, string path, bool appliesToMesh, bool without) =>
        s.Map(node, path, (key, name, value, p) =>
        {
            if (name.StartsWith("@request.auth.claims", StringComparison.Ordinal))
            {
                if (appliesToMesh)
                {
                    s.Error(key, p, $"JWT claim based routing ({name}) is only supported for gateways");
                    return null;
                }
            }
            else if (!PseudoHeaders.Contains(name) && !KubeNames.HeaderName().IsMatch(name))
            {
                s.Error(key, p, $"'{name}' {KubeNames.HeaderNameHint}");
                return null;
            }
            if (without && value is YamlMappingNode m && m.Children.Count == 1
                && m.Children.TryGetValue(new YamlScalarNode("regex"), out YamlNode? rx) && rx is YamlScalarNode { Value: "*" })
            {
                return new IstioStringMatch(StringMatchType.Presence, "", null);
            }
            return StringMatch(value, p, allowEmptyPrefix: false, emptyIsPresence: true);
        });

    /// <summary>
    /// An Istio StringMatch: exactly one of exact, prefix, regex. An empty prefix matches everything, which Envoy
    /// allows only for the URI. <paramref name="emptyIsPresence"/>: <c>{}</c> means "present" (headers, query).
    /// </summary>
    private IstioStringMatch? StringMatch(YamlNode node, string path, bool allowEmptyPrefix, bool emptyIsPresence = false, bool ignoreCase = false)
    {
        IstioStringMatch? match = null;
        YamlScalarNode? first = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            StringMatchType? type = key switch
            {
                "exact" => StringMatchType.Exact,
                "prefix" => StringMatchType.Prefix,
                "regex" => StringMatchType.Regex,
                _ => null,
            };
            if (type is null)
            {
                s.Unknown(k, path, StringMatchKeys);
                continue;
            }
            if (first is not null)
            {
                s.Error(k, p, $"only one of exact, prefix and regex can be set (already {first.Value})");
                continue;
            }
            first = k;
            string? value = s.String(v, p);
            if (value is null)
            {
                continue;
            }
            switch (type)
            {
                case StringMatchType.Prefix when value.Length == 0 && !allowEmptyPrefix:
                    s.Error(v, p, "a prefix match must not be empty");
                    break;
                case StringMatchType.Regex:
                    if (value.Length == 0)
                    {
                        s.Error(v, p, "a regex match must not be empty");
                    }
                    else if (s.CompileRegex(value, v, p, ignoreCase) is { } regex)
                    {
                        match = new IstioStringMatch(StringMatchType.Regex, value, regex, ignoreCase);
                    }
                    break;
                default:
                    match = new IstioStringMatch(type.Value, value, null, ignoreCase);
                    break;
            }
        }
        if (first is null && node is YamlMappingNode or YamlScalarNode { Value: null or "" })
        {
            return emptyIsPresence ? new IstioStringMatch(StringMatchType.Presence, "", null) : null;
        }
        return match;
    }

    private Destination? Destination(YamlNode node, string path)
    {
        string? host = null, subset = null;
        int? port = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "host":
                    host = s.String(v, p);
                    if (host == "*")
                    {
                        s.Error(v, p, "'*' is not a destination host");
                        host = null;
                    }
                    else if (host is not null && WildcardDomainProblem(host) is { } problem)
                    {
                        s.Error(v, p, problem);
                        host = null;
                    }
                    break;
                case "subset":
                    subset = SubsetName(v, p);
                    break;
                case "port":
                    port = PortSelector(v, p);
                    break;
                default:
                    s.Unknown(k, path, DestinationKeys);
                    break;
            }
        }
        return s.Require(node, path, "host", "the destination service") && host is not null ? new Destination(host, subset, port) : null;
    }

    private ImmutableArray<HttpRouteDestination> HttpDestinations(YamlNode node, string path)
    {
        ImmutableArray<HttpRouteDestination> route = s.List(node, path, int.MaxValue, (n, p) =>
        {
            Destination? destination = null;
            int weight = 0;
            HeadersPolicy? headers = null;
            foreach ((YamlScalarNode k, string key, YamlNode v, string fp) in s.Fields(n, p))
            {
                switch (key)
                {
                    case "destination":
                        destination = Destination(v, fp);
                        break;
                    case "weight":
                        weight = Weight(v, fp) ?? 0;
                        break;
                    case "headers":
                        headers = HeadersPolicy(v, fp);
                        break;
                    default:
                        s.Unknown(k, p, RouteDestinationKeys);
                        break;
                }
            }
            return s.Require(n, p, "destination", "where the traffic goes") && destination is not null
                ? new HttpRouteDestination(destination, weight, headers)
                : null;
        });
        CheckTotalWeight(node, path, route.Length, route.Sum(d => (long)d.Weight));
        return route;
    }

    private int? Weight(YamlNode node, string path)
    {
        long? w = s.Long(node, path, long.MinValue, int.MaxValue);
        if (w < 0)
        {
            s.Error(node, path, $"weight {w} is negative");
            return null;
        }
        return (int?)w;
    }

    private void CheckTotalWeight(YamlNode node, string path, int count, long total)
    {
        // Weights are relative; with several destinations they cannot all be 0 (nothing would get the traffic).
        if (count > 1 && total == 0)
        {
            s.Error(node, path, "the destination weights add up to 0");
        }
    }

    private ImmutableArray<RouteDestination> L4Destinations(YamlNode node, string path)
    {
        ImmutableArray<RouteDestination> route = s.List(node, path, int.MaxValue, (n, p) =>
        {
            Destination? destination = null;
            int weight = 0;
            foreach ((YamlScalarNode k, string key, YamlNode v, string fp) in s.Fields(n, p))
            {
                switch (key)
                {
                    case "destination":
                        destination = Destination(v, fp);
                        break;
                    case "weight":
                        weight = Weight(v, fp) ?? 0;
                        break;
                    default:
                        s.Unknown(k, p, L4RouteDestinationKeys);
                        break;
                }
            }
            return s.Require(n, p, "destination", "where the traffic goes") && destination is not null ? new RouteDestination(destination, weight) : null;
        });
        CheckTotalWeight(node, path, route.Length, route.Sum(d => (long)d.Weight));
        return route;
    }

    private HeadersPolicy? HeadersPolicy(YamlNode node, string path)
    {
        HeaderOperations? request = null, response = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "request":
                    request = HeaderOperations(v, p, isRequest: true);
                    break;
                case "response":
                    response = HeaderOperations(v, p, isRequest: false);
                    break;
                default:
                    s.Unknown(k, path, HeadersKeys);
                    break;
            }
        }
        return new HeadersPolicy(request, response);
    }

    /// <summary>
    /// Header edits. Pseudo-headers cannot be edited, except that a request may set the authority (":authority" or
    /// "host"); Host cannot be removed, nor set on a response. Values may use Envoy's %VARIABLE% substitutions.
    /// </summary>
    private HeaderOperations? HeaderOperations(YamlNode node, string path, bool isRequest)
    {
        var ops = new HeaderOperations(ImmutableDictionary<string, string>.Empty, ImmutableDictionary<string, string>.Empty, []);
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "set":
                    ops = ops with { Set = s.StringMap(v, p, (hk, name, value, hv, hp) => CheckHeaderEdit(hk, name, value, hv, hp, isRequest)) };
                    break;
                case "add":
                    ops = ops with { Add = s.StringMap(v, p, (hk, name, value, hv, hp) => CheckHeaderEdit(hk, name, value, hv, hp, isRequest)) };
                    break;
                case "remove":
                    ops = ops with
                    {
                        Remove = s.Strings(v, p, check: (rv, rp) =>
                        {
                            string? name = s.String(rv, rp);
                            return name is not null && HeaderEditProblem(name, allowAuthority: false) is { } problem
                                ? Report(rv, rp, problem)
                                : name;
                        }),
                    };
                    break;
                default:
                    s.Unknown(k, path, HeaderOperationKeys);
                    break;
            }
        }
        return ops;
    }

    private string? Report(YamlNode node, string path, string problem)
    {
        s.Error(node, path, problem);
        return null;
    }

    private void CheckHeaderEdit(YamlScalarNode key, string name, string value, YamlNode valueNode, string path, bool isRequest)
    {
        if (HeaderEditProblem(name, allowAuthority: isRequest) is { } problem)
        {
            s.Error(key, path, problem);
        }
        if (HeaderValueProblem(value) is { } valueProblem)
        {
            s.Error(valueNode, path, valueProblem);
        }
    }

    private static string? HeaderEditProblem(string name, bool allowAuthority)
    {
        if (name.Length == 0)
        {
            return "a header name cannot be empty";
        }
        if (allowAuthority && IsAuthorityHeader(name))
        {
            return null;
        }
        if (string.Equals(name, "host", StringComparison.OrdinalIgnoreCase))
        {
            return "the Host header cannot be removed or set here";
        }
        return name.StartsWith(':') ? $"'{name}': a pseudo-header (\":\" prefix) cannot be edited" : null;
    }

    /// <summary>
    /// A header value Envoy accepts: no control characters but tab, and every '%' either doubled ("%%") or opening a
    /// %VARIABLE% or %VARIABLE(args)% that is closed.
    /// </summary>
    private static string? HeaderValueProblem(string value)
    {
        foreach (char c in value)
        {
            if ((c < 0x20 && c != '\t') || c == 0x7f)
            {
                return "a header value cannot contain control characters";
            }
        }
        for (int i = 0; i < value.Length; i++)
        {
            if (value[i] != '%')
            {
                continue;
            }
            if (i + 1 < value.Length && value[i + 1] == '%')
            {
                i++;
                continue;
            }
            int depth = 0, j = i + 1;
            for (; j < value.Length; j++)
            {
                char c = value[j];
                if (c == '(')
                {
                    depth++;
                }
                else if (c == ')')
                {
                    depth--;
                }
                else if (c == '%' && depth <= 0)
                {
                    break;
                }
            }
            if (j >= value.Length)
            {
                return $"'{value}': an unescaped '%' (write \"%%\" for a literal percent sign, or close the %VARIABLE%)";
            }
            i = j;
        }
        return null;
    }

    private HttpRedirect? Redirect(YamlNode node, string path)
    {
        var redirect = new HttpRedirect();
        YamlScalarNode? portKey = null, deriveKey = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "uri":
                    redirect = redirect with { Uri = s.String(v, p) };
                    break;
                case "prefixRewrite":
                    redirect = redirect with { PrefixRewrite = s.String(v, p) };
                    break;
                case "authority":
                    redirect = redirect with { Authority = s.String(v, p) };
                    break;
                case "port":
                    portKey = k;
                    redirect = redirect with { Port = Port(v, p) };
                    break;
                case "derivePort":
                    deriveKey = k;
                    redirect = redirect with
                    {
                        DerivePort = s.Enum(v, p, [("FROM_PROTOCOL_DEFAULT", RedirectPortSelection.FromProtocolDefault), ("FROM_REQUEST_PORT", RedirectPortSelection.FromRequestPort)]),
                    };
                    break;
                case "scheme":
                    redirect = redirect with { Scheme = s.OneOf(v, p, ["http", "https"]) };
                    break;
                case "redirectCode":
                    if (s.UInt(v, p) is uint code && code != 0)
                    {
                        if (code is < 300 or > 399)
                        {
                            s.Error(v, p, $"{code} is not a redirect code (3xx)");
                        }
                        redirect = redirect with { RedirectCode = (int)Math.Min(code, 999) };
                    }
                    break;
                default:
                    s.Unknown(k, path, RedirectKeys);
                    break;
            }
        }
        if (portKey is not null && deriveKey is not null)
        {
            s.Error(deriveKey, Child(path, "derivePort"), "only one of port and derivePort can be set");
        }
        if (!string.IsNullOrEmpty(redirect.Uri) && !string.IsNullOrEmpty(redirect.PrefixRewrite))
        {
            s.Error(node, Child(path, "prefixRewrite"), "a redirect may set only one of uri and prefixRewrite");
        }
        if (string.IsNullOrEmpty(redirect.Uri) && string.IsNullOrEmpty(redirect.PrefixRewrite) && string.IsNullOrEmpty(redirect.Authority)
            && redirect.Port is null && deriveKey is null && string.IsNullOrEmpty(redirect.Scheme))
        {
            s.Error(node, path, "a redirect must set uri, prefixRewrite, authority, scheme or port");
        }
        return redirect;
    }

    private HttpDirectResponse? DirectResponse(YamlNode node, string path)
    {
        int? status = null;
        ReadOnlyMemory<byte>? body = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "status":
                    status = HttpStatus(v, p);
                    break;
                case "body":
                    body = Body(v, p);
                    break;
                default:
                    s.Unknown(k, path, DirectResponseKeys);
                    break;
            }
        }
        return s.Require(node, path, "status", "the HTTP status to answer with") && status is int st ? new HttpDirectResponse(st, body) : null;
    }

    /// <summary>A status a proxy may answer with: 200-599 (Istio's check).</summary>
    private int? HttpStatus(YamlNode node, string path)
    {
        long? st = s.Long(node, path, long.MinValue, long.MaxValue);
        if (st is null)
        {
            return null;
        }
        if (st is < 200 or > 599)
        {
            s.Error(node, path, $"HTTP status {st} is not in range 200-599");
            return null;
        }
        return (int)st;
    }

    private ReadOnlyMemory<byte>? Body(YamlNode node, string path)
    {
        ReadOnlyMemory<byte>? body = null;
        YamlScalarNode? first = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            if (key is not ("string" or "bytes"))
            {
                s.Unknown(k, path, ["string", "bytes"]);
                continue;
            }
            if (first is not null)
            {
                s.Error(k, p, "only one of string and bytes can be set");
                continue;
            }
            first = k;
            string? text = s.String(v, p);
            if (text is null)
            {
                continue;
            }
            byte[] bytes;
            if (key == "string")
            {
                bytes = System.Text.Encoding.UTF8.GetBytes(text);
            }
            else
            {
                try
                {
                    bytes = Convert.FromBase64String(text);
                }
                catch (FormatException)
                {
                    s.Error(v, p, "bytes must be base64-encoded");
                    continue;
                }
            }
            if (bytes.Length > MaxDirectResponseBody)
            {
                s.Error(v, p, $"the body is {bytes.Length} bytes; a direct response body must be under 1 MB");
                continue;
            }
            body = bytes;
        }
        return body;
    }

    private VirtualServiceDelegate? Delegate(YamlNode node, string path)
    {
        string? name = null, ns = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "name":
                    name = s.NonEmpty(v, p);
                    break;
                case "namespace":
                    ns = NamespaceName(v, p);
                    break;
                default:
                    s.Unknown(k, path, ["name", "namespace"]);
                    break;
            }
        }
        return s.Require(node, path, "name", "the delegate VirtualService's name") && name is not null ? new VirtualServiceDelegate(name, ns) : null;
    }

    private HttpRewrite? Rewrite(YamlNode node, string path)
    {
        string? uri = null, authority = null;
        RegexRewrite? regexRewrite = null;
        YamlScalarNode? regexKey = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "uri":
                    uri = s.String(v, p);
                    break;
                case "authority":
                    authority = s.String(v, p);
                    break;
                case "uriRegexRewrite":
                    regexKey = k;
                    SafeRegex? match = null;
                    string? replacement = null;
                    foreach ((YamlScalarNode rk, string rf, YamlNode rv, string rp) in s.Fields(v, p))
                    {
                        switch (rf)
                        {
                            case "match":
                                // A search pattern: every occurrence in the path is replaced.
                                match = s.String(rv, rp) is { } pattern ? s.CompileRegex(pattern, rv, rp, fullMatch: false) : null;
                                break;
                            case "rewrite":
                                replacement = s.NonEmpty(rv, rp);
                                break;
                            default:
                                s.Unknown(rk, p, ["match", "rewrite"]);
                                break;
                        }
                    }
                    bool ok = s.Require(v, p, "match", "the regex to replace");
                    ok &= s.Require(v, p, "rewrite", "the replacement");
                    if (ok && match is not null && replacement is not null)
                    {
                        regexRewrite = new RegexRewrite(match, replacement);
                    }
                    break;
                default:
                    s.Unknown(k, path, RewriteKeys);
                    break;
            }
        }
        if (!string.IsNullOrEmpty(uri) && regexKey is not null)
        {
            s.Error(regexKey, Child(path, "uriRegexRewrite"), "a rewrite may set only one of uri and uriRegexRewrite");
        }
        if (string.IsNullOrEmpty(uri) && regexKey is null && string.IsNullOrEmpty(authority))
        {
            s.Error(node, path, "a rewrite must set uri, uriRegexRewrite or authority");
        }
        return new HttpRewrite(string.IsNullOrEmpty(uri) ? null : uri, string.IsNullOrEmpty(authority) ? null : authority, regexRewrite);
    }

    private HttpRetry? Retry(YamlNode node, string path)
    {
        var retry = new HttpRetry();
        var present = new List<YamlScalarNode>();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            if (key != "attempts")
            {
                present.Add(k);
            }
            switch (key)
            {
                case "attempts":
                    long? attempts = s.Long(v, p, long.MinValue, int.MaxValue);
                    if (attempts < 0)
                    {
                        s.Error(v, p, $"attempts cannot be negative ({attempts})");
                    }
                    else if (attempts is long a)
                    {
                        retry = retry with { Attempts = (int)a };
                    }
                    break;
                case "perTryTimeout":
                    retry = retry with { PerTryTimeout = s.IstioDuration(v, p) };
                    break;
                case "retryOn":
                    retry = retry with { RetryOn = RetryOn(v, p) };
                    break;
                case "retryRemoteLocalities":
                    retry = retry with { RetryRemoteLocalities = s.Bool(v, p) };
                    break;
                case "retryIgnorePreviousHosts":
                    retry = retry with { RetryIgnorePreviousHosts = s.Bool(v, p) };
                    break;
                case "backoff":
                    retry = retry with { Backoff = s.IstioDuration(v, p) };
                    break;
                default:
                    s.Unknown(k, path, RetryKeys);
                    break;
            }
        }
        // attempts is a proto3 int: unset reads as 0, which disables retries; Istio refuses settings that would then be
        // silently ignored.
        if (retry.Attempts == 0)
        {
            foreach (YamlScalarNode k in present)
            {
                if (k.Value is "perTryTimeout" or "retryOn" or "retryRemoteLocalities")
                {
                    s.Error(k, Child(path, k.Value), SpecReader.Has(node, "attempts")
                        ? "has no effect: retries are disabled (attempts: 0)"
                        : "has no effect: attempts is unset, which means 0 (retries disabled); set attempts");
                }
            }
        }
        return retry;
    }

    /// <summary>retryOn: comma-separated Envoy retry-on names or HTTP status codes.</summary>
    private ImmutableArray<string> RetryOn(YamlNode node, string path)
    {
        string? text = s.String(node, path);
        if (string.IsNullOrEmpty(text))
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<string>();
        foreach (string policy in text.Split(','))
        {
            bool isStatus = int.TryParse(policy, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int code)
                && code is >= 100 and <= 599;
            if (!isStatus && !RetryOnPolicies.Contains(policy))
            {
                s.Error(node, path, $"'{policy}' is not a valid retryOn policy (one of {string.Join(", ", RetryOnPolicies)}, or an HTTP status code)");
                continue;
            }
            b.Add(policy);
        }
        return b.ToImmutable();
    }

    private HttpFaultInjection? Fault(YamlNode node, string path)
    {
        FaultDelay? delay = null;
        FaultAbort? abort = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "delay":
                    delay = Delay(v, p);
                    break;
                case "abort":
                    abort = Abort(v, p);
                    break;
                default:
                    s.Unknown(k, path, FaultKeys);
                    break;
            }
        }
        if (!SpecReader.Has(node, "delay") && !SpecReader.Has(node, "abort"))
        {
            s.Error(node, path, "a fault must have an abort and/or a delay");
        }
        return new HttpFaultInjection(delay, abort);
    }

    private FaultDelay? Delay(YamlNode node, string path)
    {
        TimeSpan? fixedDelay = null, exponential = null;
        double? percentage = null;
        int? legacyPercent = null;
        YamlScalarNode? first = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "fixedDelay":
                case "exponentialDelay":
                    if (first is not null)
                    {
                        s.Error(k, p, "only one of fixedDelay and exponentialDelay can be set");
                        break;
                    }
                    first = k;
                    TimeSpan? d = s.IstioDuration(v, p);
                    if (key == "fixedDelay")
                    {
                        fixedDelay = d;
                    }
                    else
                    {
                        exponential = d;
                        s.Error(k, p, "exponentialDelay is not supported (Istio does not implement it); use fixedDelay");
                    }
                    break;
                case "percent":
                    s.Warning(k, p, "percent is deprecated; use percentage: {value: N}");
                    legacyPercent = s.Int(v, p, 0, 100);
                    break;
                case "percentage":
                    percentage = Percent(v, p);
                    break;
                default:
                    s.Unknown(k, path, DelayKeys);
                    break;
            }
        }
        if (first is null)
        {
            s.Missing(node, path, "fixedDelay", "how long to delay requests");
            return null;
        }
        return new FaultDelay(fixedDelay, exponential, percentage ?? legacyPercent ?? 0);
    }

    private FaultAbort? Abort(YamlNode node, string path)
    {
        int? httpStatus = null, grpcStatus = null;
        double percentage = 0;
        YamlScalarNode? first = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "httpStatus":
                case "grpcStatus":
                case "http2Error":
                    if (first is not null)
                    {
                        s.Error(k, p, "only one of httpStatus, grpcStatus and http2Error can be set");
                        break;
                    }
                    first = k;
                    if (key == "httpStatus")
                    {
                        httpStatus = HttpStatus(v, p);
                    }
                    else if (key == "grpcStatus")
                    {
                        string? name = s.String(v, p);
                        int code = name is null ? -1 : Array.IndexOf(GrpcStatusNames, name);
                        if (name is not null && code < 0)
                        {
                            s.Error(v, p, $"'{name}' is not a gRPC status; use one of {string.Join(", ", GrpcStatusNames)}");
                        }
                        grpcStatus = code < 0 ? null : code;
                    }
                    else
                    {
                        s.Error(k, p, "http2Error aborts are not supported (Istio does not implement them); use httpStatus or grpcStatus");
                    }
                    break;
                case "percentage":
                    percentage = Percent(v, p) ?? 0;
                    break;
                default:
                    s.Unknown(k, path, AbortKeys);
                    break;
            }
        }
        if (first is null)
        {
            s.Missing(node, path, "httpStatus", "the status to abort with (httpStatus or grpcStatus)");
            return null;
        }
        return new FaultAbort(httpStatus, grpcStatus, percentage);
    }

    private HttpMirrorPolicy? MirrorPolicy(YamlNode node, string path)
    {
        Destination? destination = null;
        double? percentage = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "destination":
                    destination = Destination(v, p);
                    break;
                case "percentage":
                    percentage = Percent(v, p);
                    break;
                default:
                    s.Unknown(k, path, MirrorPolicyKeys);
                    break;
            }
        }
        return s.Require(node, path, "destination", "where mirrored requests go") && destination is not null
            ? new HttpMirrorPolicy(destination, percentage)
            : null;
    }

    private CorsPolicy? Cors(YamlNode node, string path)
    {
        var cors = new CorsPolicy();
        var origins = ImmutableArray.CreateBuilder<IstioStringMatch>();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "allowOrigins":
                    foreach (IstioStringMatch m in s.List(v, p, int.MaxValue, (n, op) => Origin(n, op)))
                    {
                        origins.Add(m);
                    }
                    break;
                case "allowOrigin":
                    s.Warning(k, p, "allowOrigin is deprecated; use allowOrigins with exact matches");
                    foreach (string o in s.Strings(v, p))
                    {
                        origins.Add(new IstioStringMatch(StringMatchType.Exact, o, null));
                    }
                    break;
                case "allowMethods":
                    cors = cors with { AllowMethods = s.Strings(v, p, check: (mv, mp) => s.OneOf(mv, mp, [.. HttpMethods, "*"])) };
                    break;
                case "allowHeaders":
                    cors = cors with { AllowHeaders = s.Strings(v, p, check: CorsHeader) };
                    break;
                case "exposeHeaders":
                    cors = cors with { ExposeHeaders = s.Strings(v, p, check: CorsHeader) };
                    break;
                case "maxAge":
                    TimeSpan? maxAge = s.IstioDuration(v, p);
                    if (maxAge is { } age && age.Ticks % TimeSpan.TicksPerSecond != 0)
                    {
                        s.Error(v, p, "maxAge is accurate only to whole seconds");
                    }
                    cors = cors with { MaxAge = maxAge };
                    break;
                case "allowCredentials":
                    cors = cors with { AllowCredentials = s.Bool(v, p) };
                    break;
                case "unmatchedPreflights":
                    cors = cors with
                    {
                        UnmatchedPreflights = s.Enum(v, p, [("UNSPECIFIED", UnmatchedPreflights.Unspecified), ("FORWARD", UnmatchedPreflights.Forward), ("IGNORE", UnmatchedPreflights.Ignore)])
                            ?? UnmatchedPreflights.Unspecified,
                    };
                    break;
                default:
                    s.Unknown(k, path, CorsPolicyKeys);
                    break;
            }
        }
        return cors with { AllowOrigins = origins.ToImmutable() };
    }

    private IstioStringMatch? Origin(YamlNode node, string path)
    {
        if (!SpecReader.Has(node, "exact") && !SpecReader.Has(node, "prefix") && !SpecReader.Has(node, "regex"))
        {
            s.Error(node, path, "an allowed origin needs exact, prefix or regex");
            return null;
        }
        IstioStringMatch? m = StringMatch(node, path, allowEmptyPrefix: false);
        if (m is { Value.Length: 0 })
        {
            s.Error(node, path, "an allowed origin must not be empty");
            return null;
        }
        return m;
    }

    private string? CorsHeader(YamlNode node, string path)
    {
        string? h = s.String(node, path);
        if (h is null || h == "*")
        {
            return h;
        }
        if (h.Length == 0 || !KubeNames.HeaderName().IsMatch(h))
        {
            s.Error(node, path, $"'{h}' {KubeNames.HeaderNameHint}");
            return null;
        }
        return h;
    }

    private VirtualServiceTlsRoute? TlsRoute(YamlNode node, string path, ImmutableArray<string> hosts)
    {
        ImmutableArray<TlsMatchAttributes> match = [];
        ImmutableArray<RouteDestination> route = [];
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "match":
                    match = s.List(v, p, int.MaxValue, (n, mp) => TlsMatch(n, mp, hosts));
                    break;
                case "route":
                    route = L4Destinations(v, p);
                    break;
                default:
                    s.Unknown(k, path, TlsRouteKeys);
                    break;
            }
        }
        if (!NonEmptyList(node, "match"))
        {
            s.Missing(node, path, "match", "a TLS route needs at least one match");
        }
        if (!NonEmptyList(node, "route"))
        {
            s.Missing(node, path, "route", "a TLS route needs a destination");
        }
        return new VirtualServiceTlsRoute(match, route);
    }

    private TlsMatchAttributes? TlsMatch(YamlNode node, string path, ImmutableArray<string> hosts)
    {
        var l4 = new L4Fields();
        ImmutableArray<string> sniHosts = [];
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            if (L4Field(l4, key, v, p))
            {
                continue;
            }
            if (key != "sniHosts")
            {
                s.Unknown(k, path, TlsMatchKeys);
                continue;
            }
            sniHosts = s.Strings(v, p, check: (sv, sp) =>
            {
                string? sni = s.String(sv, sp);
                if (sni is null)
                {
                    return null;
                }
                if (WildcardDomainProblem(sni) is { } problem && !IsIp(sni))
                {
                    return Report(sv, sp, problem);
                }
                if (!hosts.IsEmpty && !hosts.Any(h => HostCovers(h, sni)))
                {
                    return Report(sv, sp, $"SNI host '{sni}' is not one of the virtual service's hosts (or covered by a wildcard host)");
                }
                return sni;
            });
        }
        if (sniHosts.IsEmpty && !SpecReader.Has(node, "sniHosts"))
        {
            s.Missing(node, path, "sniHosts", "a TLS match needs at least one SNI host");
        }
        return new TlsMatchAttributes
        {
            SniHosts = sniHosts,
            DestinationSubnets = l4.DestinationSubnets,
            Port = l4.Port,
            SourceLabels = l4.SourceLabels,
            Gateways = l4.Gateways,
            SourceNamespace = l4.SourceNamespace,
        };
    }

    /// <summary>The match fields TLS and TCP rules share.</summary>
    private sealed class L4Fields
    {
        public ImmutableArray<string> DestinationSubnets = [];
        public int? Port;
        public ImmutableDictionary<string, string> SourceLabels = ImmutableDictionary<string, string>.Empty;
        public ImmutableArray<string> Gateways = [];
        public string? SourceNamespace;
    }

    /// <summary>Reads <paramref name="key"/> into <paramref name="f"/> if it is one of the shared L4 match fields.</summary>
    private bool L4Field(L4Fields f, string key, YamlNode v, string p)
    {
        switch (key)
        {
            case "destinationSubnets":
                f.DestinationSubnets = Subnets(v, p);
                return true;
            case "port":
                f.Port = Port(v, p);
                return true;
            case "sourceLabels":
                f.SourceLabels = Labels(v, p);
                return true;
            case "gateways":
                f.Gateways = Gateways(v, p);
                return true;
            case "sourceNamespace":
                f.SourceNamespace = NamespaceName(v, p);
                return true;
            default:
                return false;
        }
    }

    private VirtualServiceTcpRoute? TcpRoute(YamlNode node, string path)
    {
        ImmutableArray<L4MatchAttributes> match = [];
        ImmutableArray<RouteDestination> route = [];
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "match":
                    match = s.List(v, p, int.MaxValue, L4Match);
                    break;
                case "route":
                    route = L4Destinations(v, p);
                    break;
                default:
                    s.Unknown(k, path, TlsRouteKeys);
                    break;
            }
        }
        if (!NonEmptyList(node, "route"))
        {
            s.Missing(node, path, "route", "a TCP route needs a destination");
        }
        return new VirtualServiceTcpRoute(match, route);
    }

    private L4MatchAttributes? L4Match(YamlNode node, string path)
    {
        var l4 = new L4Fields();
        string? sourceSubnet = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            if (L4Field(l4, key, v, p))
            {
                continue;
            }
            if (key == "sourceSubnet")
            {
                sourceSubnet = Subnet(v, p);
            }
            else
            {
                s.Unknown(k, path, L4MatchKeys);
            }
        }
        return new L4MatchAttributes
        {
            DestinationSubnets = l4.DestinationSubnets,
            Port = l4.Port,
            SourceLabels = l4.SourceLabels,
            Gateways = l4.Gateways,
            SourceNamespace = l4.SourceNamespace,
            SourceSubnet = sourceSubnet,
        };
    }

    /// <summary>True when <paramref name="key"/> holds a list with at least one entry (entries' own errors are reported where read).</summary>
    private static bool NonEmptyList(YamlNode node, string key) =>
        node is YamlMappingNode m && m.Children.TryGetValue(new YamlScalarNode(key), out YamlNode? v) && v is YamlSequenceNode { Children.Count: > 0 };

    private ImmutableArray<string> Subnets(YamlNode node, string path) => s.Strings(node, path, check: Subnet);

    private string? Subnet(YamlNode node, string path)
    {
        string? text = s.String(node, path);
        if (text is not null && !ConfigValues.TryParseCidr(text, out _, out string error))
        {
            return Report(node, path, error);
        }
        return text;
    }
}
