using System.Collections.Immutable;

namespace Ambient.Mesh.Model.L7;

/// <summary>
/// An Istio VirtualService (networking.istio.io v1; v1beta1 and v1alpha3 read the same): ordered routing rules for
/// the traffic addressed to <see cref="Hosts"/>. The first rule that matches a request wins. Where an HTTPRoute
/// and a VirtualService govern the same service on a waypoint, the HTTPRoute wins (Istio's rule).
/// </summary>
public sealed record VirtualService : MeshObject
{
    public override string Kind => "VirtualService";

    /// <summary>Destination hosts (short names, FQDNs, "*.suffix", or IPs); empty only for a delegate.</summary>
    public ImmutableArray<string> Hosts { get; init; } = [];

    /// <summary>Gateways ("ns/name") and "mesh" the rules apply to; empty means "mesh" (sidecars and waypoints).</summary>
    public ImmutableArray<string> Gateways { get; init; } = [];

    public ImmutableArray<VirtualServiceHttpRoute> Http { get; init; } = [];

    public ImmutableArray<VirtualServiceTlsRoute> Tls { get; init; } = [];

    public ImmutableArray<VirtualServiceTcpRoute> Tcp { get; init; } = [];

    public ImmutableArray<string> ExportTo { get; init; } = [];

    /// <summary>True when the rules apply to mesh traffic (what a waypoint serves), not only to gateways.</summary>
    public bool AppliesToMesh => Gateways.IsEmpty || Gateways.Contains("mesh");
}

public enum StringMatchType
{
    Exact,
    Prefix,
    Regex,
    /// <summary>The value must be present (a header given as <c>{}</c>; <c>regex: "*"</c> in withoutHeaders).</summary>
    Presence,
}

/// <summary>Istio's StringMatch: exact, prefix or (full-match, RE2-like) regex.</summary>
/// <param name="IgnoreCase">For a URI match with <c>ignoreUriCase</c>.</param>
public sealed record IstioStringMatch(StringMatchType Type, string Value, SafeRegex? Regex, bool IgnoreCase = false)
{
    public bool Matches(string? value) => value is not null && Type switch
    {
        StringMatchType.Exact => string.Equals(value, Value, IgnoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal),
        StringMatchType.Prefix => value.StartsWith(Value, IgnoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal),
        StringMatchType.Regex => Regex!.IsMatch(value),
        StringMatchType.Presence => true,
        _ => false,
    };
}

public sealed record VirtualServiceHttpRoute
{
    /// <summary>Optional name, for access logs and status.</summary>
    public string? Name { get; init; }

    /// <summary>ORed; empty matches every request.</summary>
    public ImmutableArray<HttpMatchRequest> Match { get; init; } = [];

    /// <summary>Weighted destinations; empty when the rule redirects, answers directly or delegates.</summary>
    public ImmutableArray<HttpRouteDestination> Route { get; init; } = [];

    public HttpRedirect? Redirect { get; init; }

    public HttpDirectResponse? DirectResponse { get; init; }

    public VirtualServiceDelegate? Delegate { get; init; }

    public HttpRewrite? Rewrite { get; init; }

    /// <summary>Null: no timeout (Istio's default).</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Null: the mesh's default retry policy (<see cref="HttpRetry.MeshDefault"/>).</summary>
    public HttpRetry? Retries { get; init; }

    public HttpFaultInjection? Fault { get; init; }

    /// <summary>The single <c>mirror</c> destination (exclusive with <see cref="Mirrors"/>).</summary>
    public Destination? Mirror { get; init; }

    /// <summary>Share of requests mirrored to <see cref="Mirror"/> (0-100); null: all of them.</summary>
    public double? MirrorPercentage { get; init; }

    public ImmutableArray<HttpMirrorPolicy> Mirrors { get; init; } = [];

    public CorsPolicy? CorsPolicy { get; init; }

    public HeadersPolicy? Headers { get; init; }

    /// <summary>The retry policy in force: the rule's own, or the mesh default when it has none.</summary>
    public HttpRetry EffectiveRetries => Retries ?? HttpRetry.MeshDefault;
}

/// <summary>One match: every condition given must hold.</summary>
public sealed record HttpMatchRequest
{
    public string? Name { get; init; }

    public IstioStringMatch? Uri { get; init; }

    public IstioStringMatch? Scheme { get; init; }

    public IstioStringMatch? Method { get; init; }

    public IstioStringMatch? Authority { get; init; }

    /// <summary>Header name, lower-cased (header names compare case-insensitively) -> match.</summary>
    public ImmutableDictionary<string, IstioStringMatch> Headers { get; init; } = ImmutableDictionary<string, IstioStringMatch>.Empty;

    /// <summary>Headers (lower-cased names) that must not match: absent, or with a value the match refuses.</summary>
    public ImmutableDictionary<string, IstioStringMatch> WithoutHeaders { get; init; } = ImmutableDictionary<string, IstioStringMatch>.Empty;

    public ImmutableDictionary<string, IstioStringMatch> QueryParams { get; init; } = ImmutableDictionary<string, IstioStringMatch>.Empty;

    public int? Port { get; init; }

    public ImmutableDictionary<string, string> SourceLabels { get; init; } = ImmutableDictionary<string, string>.Empty;

    public ImmutableArray<string> Gateways { get; init; } = [];

    public bool IgnoreUriCase { get; init; }

    public string? SourceNamespace { get; init; }

    public string? StatPrefix { get; init; }
}

/// <summary>A service and optionally its port and DestinationRule subset.</summary>
/// <param name="Port">Needed only when the service has several ports.</param>
public sealed record Destination(string Host, string? Subset, int? Port);

/// <summary>A route destination with its weight (relative to the others in the rule) and its own header edits.</summary>
/// <param name="Weight">0 or more; a lone destination gets all traffic whatever its weight.</param>
public sealed record HttpRouteDestination(Destination Destination, int Weight, HeadersPolicy? Headers);

/// <summary><c>headers</c>: edits to the request (before forwarding) and to the response.</summary>
public sealed record HeadersPolicy(HeaderOperations? Request, HeaderOperations? Response);

public sealed record HeaderOperations(
    ImmutableDictionary<string, string> Set,
    ImmutableDictionary<string, string> Add,
    ImmutableArray<string> Remove);

public enum RedirectPortSelection
{
    /// <summary>80 for http, 443 for https.</summary>
    FromProtocolDefault,
    FromRequestPort,
}

/// <summary>Answer with a redirect. <see cref="Uri"/> and <see cref="PrefixRewrite"/> are exclusive.</summary>
public sealed record HttpRedirect
{
    public string? Uri { get; init; }

    /// <summary>Replaces the matched URI prefix (all the rule's URI matches are prefix matches).</summary>
    public string? PrefixRewrite { get; init; }

    public string? Authority { get; init; }

    public int? Port { get; init; }

    public RedirectPortSelection? DerivePort { get; init; }

    /// <summary>"http" or "https".</summary>
    public string? Scheme { get; init; }

    /// <summary>301 unless set (any 3xx).</summary>
    public int RedirectCode { get; init; } = 301;
}

/// <summary>Answer directly with a status and an optional body (at most 1 MB).</summary>
public sealed record HttpDirectResponse(int Status, ReadOnlyMemory<byte>? Body);

/// <summary>Hand the rest of the routing to another VirtualService (one without hosts).</summary>
public sealed record VirtualServiceDelegate(string Name, string? Namespace);

/// <summary>Rewrite the URI (whole or the matched prefix), or by regex, and/or the authority, before forwarding.</summary>
public sealed record HttpRewrite(string? Uri, string? Authority, RegexRewrite? UriRegexRewrite);

/// <summary>
/// Replace every part of the path that <paramref name="Match"/> matches (a search pattern, not a full match) with
/// <paramref name="Rewrite"/>, which uses RE2's substitution syntax (<c>\1</c> for a group, <c>\\</c> for a backslash).
/// </summary>
public sealed record RegexRewrite(SafeRegex Match, string Rewrite)
{
    private readonly string _replacement = ToDotNetReplacement(Rewrite);

    /// <summary>The path after the substitution (Envoy's regex_rewrite, RE2 GlobalReplace).</summary>
    public string Apply(string path) => Match.Regex.Replace(path, _replacement);

    // RE2 writes groups as \N; .NET as ${N}, and a literal '$' as "$$".
    private static string ToDotNetReplacement(string rewrite)
    {
        var b = new System.Text.StringBuilder(rewrite.Length + 8);
        for (int i = 0; i < rewrite.Length; i++)
        {
            char c = rewrite[i];
            if (c == '\\' && i + 1 < rewrite.Length && char.IsAsciiDigit(rewrite[i + 1]))
            {
                b.Append("${").Append(rewrite[++i]).Append('}');
            }
            else if (c == '\\' && i + 1 < rewrite.Length && rewrite[i + 1] == '\\')
            {
                b.Append('\\');
                i++;
            }
            else if (c == '$')
            {
                b.Append("$$");
            }
            else
            {
                b.Append(c);
            }
        }
        return b.ToString();
    }
}

/// <summary>
/// retries. <see cref="Attempts"/> 0 disables retries; <see cref="RetryOn"/> holds Envoy retry-on names and status
/// codes (split from the comma-separated string).
/// </summary>
public sealed record HttpRetry
{
    public int Attempts { get; init; }

    /// <summary>Per attempt; null: the route's timeout.</summary>
    public TimeSpan? PerTryTimeout { get; init; }

    /// <summary>Conditions; empty means <see cref="DefaultRetryOn"/>.</summary>
    public ImmutableArray<string> RetryOn { get; init; } = [];

    public bool? RetryRemoteLocalities { get; init; }

    /// <summary>Null: true (retry on another host).</summary>
    public bool? RetryIgnorePreviousHosts { get; init; }

    /// <summary>Base interval of the exponential back-off; null: 25 ms.</summary>
    public TimeSpan? Backoff { get; init; }

    /// <summary>What Istio retries on when <c>retryOn</c> is not given.</summary>
    public static readonly ImmutableArray<string> DefaultRetryOn = ["connect-failure", "refused-stream", "unavailable", "cancelled"];

    /// <summary>Istio's mesh-wide default when a rule has no <c>retries</c>: 2 attempts on <see cref="DefaultRetryOn"/>.</summary>
    public static readonly HttpRetry MeshDefault = new() { Attempts = 2 };

    public ImmutableArray<string> EffectiveRetryOn => RetryOn.IsEmpty ? DefaultRetryOn : RetryOn;

    public TimeSpan EffectiveBackoff => Backoff ?? TimeSpan.FromMilliseconds(25);
}

/// <summary>fault: delay and/or abort a share of requests (client side).</summary>
public sealed record HttpFaultInjection(FaultDelay? Delay, FaultAbort? Abort);

/// <summary>Delay <see cref="Percentage"/>% of requests by <see cref="FixedDelay"/>.</summary>
/// <param name="ExponentialDelay">Accepted by the schema; Istio does not implement it.</param>
/// <param name="Percentage">0-100; 0 (the default) delays nothing. The deprecated integer <c>percent</c> is folded in.</param>
public sealed record FaultDelay(TimeSpan? FixedDelay, TimeSpan? ExponentialDelay, double Percentage);

/// <summary>Abort <see cref="Percentage"/>% of requests with an HTTP status or a gRPC status.</summary>
/// <param name="GrpcStatus">The gRPC status code (0-16) for <c>grpcStatus</c>.</param>
/// <param name="Percentage">0-100; 0 (the default) aborts nothing.</param>
public sealed record FaultAbort(int? HttpStatus, int? GrpcStatus, double Percentage);

/// <summary>An entry of <c>mirrors</c>; a null percentage mirrors all requests.</summary>
public sealed record HttpMirrorPolicy(Destination Destination, double? Percentage);

public enum UnmatchedPreflights
{
    Unspecified,
    Forward,
    Ignore,
}

public sealed record CorsPolicy
{
    public ImmutableArray<IstioStringMatch> AllowOrigins { get; init; } = [];

    public ImmutableArray<string> AllowMethods { get; init; } = [];

    public ImmutableArray<string> AllowHeaders { get; init; } = [];

    public ImmutableArray<string> ExposeHeaders { get; init; } = [];

    public TimeSpan? MaxAge { get; init; }

    public bool? AllowCredentials { get; init; }

    public UnmatchedPreflights UnmatchedPreflights { get; init; }
}

/// <summary>A TLS (SNI-routed, passthrough) rule.</summary>
public sealed record VirtualServiceTlsRoute(ImmutableArray<TlsMatchAttributes> Match, ImmutableArray<RouteDestination> Route);

public sealed record TlsMatchAttributes
{
    public ImmutableArray<string> SniHosts { get; init; } = [];

    public ImmutableArray<string> DestinationSubnets { get; init; } = [];

    public int? Port { get; init; }

    public ImmutableDictionary<string, string> SourceLabels { get; init; } = ImmutableDictionary<string, string>.Empty;

    public ImmutableArray<string> Gateways { get; init; } = [];

    public string? SourceNamespace { get; init; }
}

/// <summary>An opaque TCP rule.</summary>
public sealed record VirtualServiceTcpRoute(ImmutableArray<L4MatchAttributes> Match, ImmutableArray<RouteDestination> Route);

public sealed record L4MatchAttributes
{
    public ImmutableArray<string> DestinationSubnets { get; init; } = [];

    public int? Port { get; init; }

    public ImmutableDictionary<string, string> SourceLabels { get; init; } = ImmutableDictionary<string, string>.Empty;

    public ImmutableArray<string> Gateways { get; init; } = [];

    public string? SourceNamespace { get; init; }

    public string? SourceSubnet { get; init; }
}

/// <summary>A TLS or TCP destination with its weight.</summary>
public sealed record RouteDestination(Destination Destination, int Weight);
