using System.Collections.Immutable;

namespace Ambient.Mesh.Model.L7;

/// <summary>
/// A Gateway API HTTPRoute (gateway.networking.k8s.io v1; v1beta1 and v1alpha2 read the same). In a mesh its
/// parents are Services (GAMMA): the waypoint applies the rules to requests for that Service.
/// </summary>
public sealed record HttpRoute : MeshObject
{
    public override string Kind => "HTTPRoute";

    public ImmutableArray<ParentReference> ParentRefs { get; init; } = [];

    /// <summary>Host headers this route answers; empty means any. A leading "*." is a wildcard label.</summary>
    public ImmutableArray<string> Hostnames { get; init; } = [];

    /// <summary>At least one: an omitted list is one rule matching every path (PathPrefix "/").</summary>
    public ImmutableArray<HttpRouteRule> Rules { get; init; } = [];

    /// <summary>Experimental <c>useDefaultGateways</c> ("All" or "None"); null when unset.</summary>
    public string? UseDefaultGateways { get; init; }
}

public sealed record HttpRouteRule
{
    /// <summary>Optional rule name (unique within the route), for status and metrics.</summary>
    public string? Name { get; init; }

    /// <summary>ORed; never empty (an omitted list is one PathPrefix "/" match, as the API server defaults it).</summary>
    public ImmutableArray<HttpRouteMatch> Matches { get; init; } = [];

    public ImmutableArray<RouteFilter> Filters { get; init; } = [];

    /// <summary>Empty: requests that match answer 500 unless a RequestRedirect filter answers them.</summary>
    public ImmutableArray<WeightedBackendRef> BackendRefs { get; init; } = [];

    public HttpRouteTimeouts? Timeouts { get; init; }

    public HttpRouteRetry? Retry { get; init; }

    public SessionPersistence? SessionPersistence { get; init; }
}

/// <summary>One match: every part given must match (path, all headers, all query parameters, method).</summary>
/// <param name="Method">Upper-case method name, or null for any.</param>
public sealed record HttpRouteMatch(
    HttpPathMatch Path,
    ImmutableArray<HeaderMatch> Headers,
    ImmutableArray<QueryParamMatch> QueryParams,
    string? Method)
{
    /// <summary>What an omitted match (or match path) means: PathPrefix "/".</summary>
    public static readonly HttpRouteMatch Default = new(HttpPathMatch.Default, [], [], null);
}

public enum PathMatchType
{
    Exact,
    /// <summary>Element-wise prefix: "/foo" matches "/foo" and "/foo/bar", not "/foobar".</summary>
    PathPrefix,
    RegularExpression,
}

/// <param name="Regex">Compiled when <paramref name="Type"/> is RegularExpression, else null.</param>
public sealed record HttpPathMatch(PathMatchType Type, string Value, SafeRegex? Regex)
{
    public static readonly HttpPathMatch Default = new(PathMatchType.PathPrefix, "/", null);
}

/// <summary>A query parameter match (names compare exactly).</summary>
public sealed record QueryParamMatch(ValueMatchType Type, string Name, string Value, SafeRegex? Regex);

/// <summary>
/// <c>timeouts</c>: <paramref name="Request"/> bounds the whole exchange with the client (retries included),
/// <paramref name="BackendRequest"/> one attempt to a backend. <see cref="TimeSpan.Zero"/> means "no timeout";
/// null means unset (Istio then applies no timeout at all).
/// </summary>
public sealed record HttpRouteTimeouts(TimeSpan? Request, TimeSpan? BackendRequest);

/// <summary>
/// <c>retry</c> (GEP-1731). <paramref name="Codes"/> are retried in addition to connection errors;
/// <paramref name="Backoff"/> is the minimum wait between attempts.
/// </summary>
/// <param name="Attempts">Retries after the first try; null = the implementation's default (see <see cref="EffectiveAttempts"/>).</param>
public sealed record HttpRouteRetry(ImmutableArray<int> Codes, int? Attempts, TimeSpan? Backoff)
{
    /// <summary>Istio's retry count when a route has a retry stanza without <c>attempts</c> (and its mesh default).</summary>
    public const int DefaultAttempts = 2;

    /// <summary>What Istio retries besides <see cref="Codes"/> (Envoy retry_on names).</summary>
    public const string DefaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled";

    public int EffectiveAttempts => Attempts ?? DefaultAttempts;
}
