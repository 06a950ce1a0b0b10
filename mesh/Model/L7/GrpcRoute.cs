using System.Collections.Immutable;

namespace Ambient.Mesh.Model.L7;

/// <summary>
/// A Gateway API GRPCRoute (gateway.networking.k8s.io v1; v1alpha2 reads the same): routing of gRPC calls by
/// service, method and headers. In a mesh its parents are Services (GAMMA).
/// </summary>
public sealed record GrpcRoute : MeshObject
{
    public override string Kind => "GRPCRoute";

    public ImmutableArray<ParentReference> ParentRefs { get; init; } = [];

    public ImmutableArray<string> Hostnames { get; init; } = [];

    /// <summary>May be empty (then the route matches nothing).</summary>
    public ImmutableArray<GrpcRouteRule> Rules { get; init; } = [];

    /// <summary>Experimental <c>useDefaultGateways</c> ("All" or "None"); null when unset.</summary>
    public string? UseDefaultGateways { get; init; }
}

public sealed record GrpcRouteRule
{
    public string? Name { get; init; }

    /// <summary>ORed; empty matches every call.</summary>
    public ImmutableArray<GrpcRouteMatch> Matches { get; init; } = [];

    /// <summary>RequestHeaderModifier, ResponseHeaderModifier, RequestMirror or ExtensionRef filters.</summary>
    public ImmutableArray<RouteFilter> Filters { get; init; } = [];

    public ImmutableArray<WeightedBackendRef> BackendRefs { get; init; } = [];

    public SessionPersistence? SessionPersistence { get; init; }
}

/// <summary>A match: the method (if given) and every header must match.</summary>
public sealed record GrpcRouteMatch(GrpcMethodMatch? Method, ImmutableArray<HeaderMatch> Headers);

/// <summary>
/// Matches the call's <c>/service/method</c> path. A null <see cref="Service"/> or <see cref="Method"/> matches any;
/// for RegularExpression the compiled patterns are in <see cref="ServiceRegex"/> and <see cref="MethodRegex"/>.
/// </summary>
public sealed record GrpcMethodMatch(ValueMatchType Type, string? Service, string? Method, SafeRegex? ServiceRegex, SafeRegex? MethodRegex)
{
    /// <summary>True when a call to <paramref name="service"/>/<paramref name="method"/> matches.</summary>
    public bool Matches(string service, string method) => Type == ValueMatchType.Exact
        ? (Service is null || Service == service) && (Method is null || Method == method)
        : (ServiceRegex is null || ServiceRegex.IsMatch(service)) && (MethodRegex is null || MethodRegex.IsMatch(method));
}
