using System.Collections.Immutable;

namespace Ambient.Mesh.Model.L7;

// Types the Gateway API route kinds (HTTPRoute, GRPCRoute) share, as gateway.networking.k8s.io/v1 defines them.
// Defaults the API server would write (group, kind, weight, redirect status...) are applied by the parser, so a
// record always says what is in force.

/// <summary>A route's parent: a Gateway, or (GAMMA, the mesh case) a Service whose traffic the route governs.</summary>
/// <param name="Group">Defaults to gateway.networking.k8s.io; "" for the core group (a Service).</param>
/// <param name="Kind">Defaults to Gateway.</param>
/// <param name="Namespace">Null: the route's own namespace.</param>
/// <param name="SectionName">A listener name (Gateway) or port name (Service); null = all.</param>
/// <param name="Port">A listener port (Gateway) or service port (Service); null = all.</param>
public sealed record ParentReference(string Group, string Kind, string? Namespace, string Name, string? SectionName, int? Port)
{
    public const string GatewayGroup = "gateway.networking.k8s.io";

    /// <summary>A GAMMA parent: the route applies to traffic for this Service (what a waypoint serves).</summary>
    public bool IsService => Group.Length == 0 && Kind == "Service";
}

/// <summary>A reference to a backend (a Service by default) in this namespace or another.</summary>
/// <param name="Group">Defaults to "" (core).</param>
/// <param name="Kind">Defaults to Service.</param>
/// <param name="Namespace">Null: the route's own namespace (another namespace needs a ReferenceGrant).</param>
/// <param name="Port">Required for a Service.</param>
public sealed record BackendObjectReference(string Group, string Kind, string Name, string? Namespace, int? Port)
{
    public bool IsService => Group.Length == 0 && Kind == "Service";
}

/// <summary>A reference to an object in the route's namespace (ExtensionRef filters).</summary>
public sealed record LocalObjectReference(string Group, string Kind, string Name);

/// <summary>A backend with its share of traffic and the filters applied only when it is chosen.</summary>
/// <param name="Weight">0..1,000,000, default 1. Traffic is split by weight / sum of weights; 0 receives nothing.</param>
public sealed record WeightedBackendRef(BackendObjectReference Backend, int Weight, ImmutableArray<RouteFilter> Filters);

/// <summary>How a header match or query-parameter match compares its value.</summary>
public enum ValueMatchType
{
    Exact,
    RegularExpression,
}

/// <summary>A header match (names compare case-insensitively; values as the type says).</summary>
/// <param name="Regex">Compiled when <paramref name="Type"/> is RegularExpression, else null.</param>
public sealed record HeaderMatch(ValueMatchType Type, string Name, string Value, SafeRegex? Regex);

/// <summary>One header to set or add.</summary>
public sealed record HttpHeader(string Name, string Value);

/// <summary>RequestHeaderModifier / ResponseHeaderModifier: set (replace), add (append), remove, in that order of meaning.</summary>
public sealed record HeaderModifier(ImmutableArray<HttpHeader> Set, ImmutableArray<HttpHeader> Add, ImmutableArray<string> Remove);

/// <summary>A filter of a route rule or of one backend. Subtypes per filter type.</summary>
public abstract record RouteFilter
{
    /// <summary>The filter type as the manifest spells it ("RequestHeaderModifier", "URLRewrite", ...).</summary>
    public abstract string Type { get; }
}

public sealed record RequestHeaderModifierFilter(HeaderModifier Modifier) : RouteFilter
{
    public override string Type => "RequestHeaderModifier";
}

public sealed record ResponseHeaderModifierFilter(HeaderModifier Modifier) : RouteFilter
{
    public override string Type => "ResponseHeaderModifier";
}

/// <summary>
/// RequestMirror: a copy of each selected request goes to <paramref name="Backend"/> and its response is dropped.
/// <paramref name="Percent"/> and <paramref name="Fraction"/> are exclusive; neither means every request.
/// </summary>
public sealed record RequestMirrorFilter(BackendObjectReference Backend, int? Percent, MirrorFraction? Fraction) : RouteFilter
{
    public override string Type => "RequestMirror";

    /// <summary>The share of requests mirrored, 0..1.</summary>
    public double Share => Fraction is { } f ? (double)f.Numerator / f.Denominator : (Percent ?? 100) / 100.0;
}

/// <param name="Denominator">Default 100.</param>
public sealed record MirrorFraction(int Numerator, int Denominator);

public enum PathModifierType
{
    ReplaceFullPath,
    ReplacePrefixMatch,
}

/// <summary>How a redirect or rewrite changes the path: the whole path, or the part the rule's PathPrefix matched.</summary>
public sealed record PathModifier(PathModifierType Type, string Value);

/// <summary>RequestRedirect: answer with a redirect instead of forwarding. Unset parts keep the request's own.</summary>
/// <param name="Scheme">"http" or "https".</param>
/// <param name="Port">Null: see the Gateway API rules (the scheme's default port when the scheme changes).</param>
/// <param name="StatusCode">301, 302 (default), 303, 307 or 308.</param>
public sealed record RequestRedirectFilter(string? Scheme, string? Hostname, PathModifier? Path, int? Port, int StatusCode) : RouteFilter
{
    public override string Type => "RequestRedirect";
}

/// <summary>URLRewrite: rewrite the host and/or path before forwarding.</summary>
public sealed record UrlRewriteFilter(string? Hostname, PathModifier? Path) : RouteFilter
{
    public override string Type => "URLRewrite";
}

/// <summary>ExtensionRef: an implementation-specific filter object. The waypoint refuses kinds it does not know.</summary>
public sealed record ExtensionRefFilter(LocalObjectReference Ref) : RouteFilter
{
    public override string Type => "ExtensionRef";
}

/// <summary>CORS (HTTPRoute only).</summary>
/// <param name="MaxAgeSeconds">How long a preflight answer may be cached; default 5.</param>
public sealed record CorsFilter(
    ImmutableArray<string> AllowOrigins,
    bool? AllowCredentials,
    ImmutableArray<string> AllowMethods,
    ImmutableArray<string> AllowHeaders,
    ImmutableArray<string> ExposeHeaders,
    int MaxAgeSeconds) : RouteFilter
{
    public override string Type => "CORS";
}

public enum ExternalAuthProtocol
{
    Http,
    Grpc,
}

/// <summary>ExternalAuth (HTTPRoute, experimental): ask an authorization service before forwarding.</summary>
/// <param name="HttpPath">For HTTP: the path prefix of the check request.</param>
/// <param name="AllowedHeaders">Request headers sent to the authorization service (HTTP or gRPC).</param>
/// <param name="AllowedResponseHeaders">For HTTP: headers of the auth answer copied onto the forwarded request.</param>
/// <param name="ForwardBodyMaxSize">Bytes of body sent along; null = no body.</param>
public sealed record ExternalAuthFilter(
    ExternalAuthProtocol Protocol,
    BackendObjectReference Backend,
    string? HttpPath,
    ImmutableArray<string> AllowedHeaders,
    ImmutableArray<string> AllowedResponseHeaders,
    int? ForwardBodyMaxSize) : RouteFilter
{
    public override string Type => "ExternalAuth";
}

public enum SessionPersistenceType
{
    Cookie,
    Header,
}

public enum CookieLifetimeType
{
    Session,
    Permanent,
}

/// <summary>
/// Session persistence (experimental). Both spellings the Gateway API has shipped are read: v1.1-v1.5
/// (<c>sessionName</c>, <c>idleTimeout</c>, <c>cookieConfig.lifetimeType</c>) and later (<c>cookie.name</c>,
/// <c>cookie.path</c>, <c>header.name</c>).
/// </summary>
public sealed record SessionPersistence(
    SessionPersistenceType Type,
    string? SessionName,
    TimeSpan? AbsoluteTimeout,
    TimeSpan? IdleTimeout,
    CookieLifetimeType? CookieLifetime,
    string? CookiePath);
