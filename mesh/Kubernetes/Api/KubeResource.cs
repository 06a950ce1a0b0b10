using System.Collections.Immutable;

namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>
/// One kind the API server serves: where its collection lives (<c>/api/v1/pods</c>,
/// <c>/apis/networking.istio.io/v1/serviceentries</c>) and what its objects are called.
/// </summary>
/// <param name="Group">"" for the core group.</param>
/// <param name="Version">"v1", "v1alpha1", ...</param>
/// <param name="Kind">The object kind ("Pod"); also the kind of a <see cref="KubeObject"/> read from it.</param>
/// <param name="Plural">The resource name in the URL ("pods").</param>
/// <param name="Optional">
/// A kind that may not be installed (a CRD): a 404 on its collection means "not installed", is logged once and
/// retried later, and does not hold up the initial sync. A 404 on a built-in kind is an error like any other.
/// </param>
public sealed record KubeResource(string Group, string Version, string Kind, string Plural, bool Optional)
{
    /// <summary>"v1" for the core group, else "group/version".</summary>
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>The cluster-wide collection path, without a leading slash (relative to the server URL).</summary>
    public string CollectionPath => Group.Length == 0 ? $"api/{Version}/{Plural}" : $"apis/{Group}/{Version}/{Plural}";

    public override string ToString() => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    public static readonly KubeResource Namespace = new("", "v1", "Namespace", "namespaces", false);
    public static readonly KubeResource Pod = new("", "v1", "Pod", "pods", false);
    public static readonly KubeResource Service = new("", "v1", "Service", "services", false);
    public static readonly KubeResource EndpointSlice = new("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", false);

    public static readonly KubeResource ServiceEntry = new("networking.istio.io", "v1", "ServiceEntry", "serviceentries", true);
    public static readonly KubeResource WorkloadEntry = new("networking.istio.io", "v1", "WorkloadEntry", "workloadentries", true);
    public static readonly KubeResource VirtualService = new("networking.istio.io", "v1", "VirtualService", "virtualservices", true);
    public static readonly KubeResource DestinationRule = new("networking.istio.io", "v1", "DestinationRule", "destinationrules", true);
    public static readonly KubeResource AuthorizationPolicy = new("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies", true);
    public static readonly KubeResource PeerAuthentication = new("security.istio.io", "v1", "PeerAuthentication", "peerauthentications", true);
    public static readonly KubeResource Telemetry = new("telemetry.istio.io", "v1", "Telemetry", "telemetries", true);
    public static readonly KubeResource Gateway = new("gateway.networking.k8s.io", "v1", "Gateway", "gateways", true);
    public static readonly KubeResource HttpRoute = new("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", true);
    public static readonly KubeResource GrpcRoute = new("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes", true);
    public static readonly KubeResource HttpLocalRateLimitPolicy = new("policy.linkerd.io", "v1alpha1", "HTTPLocalRateLimitPolicy", "httplocalratelimitpolicies", true);
    public static readonly KubeResource LinkerdServer = new("policy.linkerd.io", "v1beta3", "Server", "servers", true);

    /// <summary>Every kind the mesh reads from the API server (issue 8 sections 2 and 3).</summary>
    public static readonly ImmutableArray<KubeResource> MeshKinds =
    [
        Namespace, Pod, Service, EndpointSlice,
        ServiceEntry, WorkloadEntry, VirtualService, DestinationRule,
        AuthorizationPolicy, PeerAuthentication, Telemetry,
        Gateway, HttpRoute, GrpcRoute, HttpLocalRateLimitPolicy, LinkerdServer,
    ];
}

/// <summary>
/// One kind to list and watch, with optional selectors (URL query syntax, e.g. <c>spec.nodeName=node-1</c>,
/// <c>app=web,tier!=db</c>). A field selector on pods narrows them to one node, for an agent that only captures;
/// routing needs every pod, so the mesh's default watches all of them.
/// </summary>
public sealed record KubeWatch(KubeResource Resource, string? FieldSelector = null, string? LabelSelector = null)
{
    public override string ToString()
    {
        string s = Resource.ToString();
        if (!string.IsNullOrEmpty(FieldSelector))
        {
            s += $" fieldSelector={FieldSelector}";
        }
        if (!string.IsNullOrEmpty(LabelSelector))
        {
            s += $" labelSelector={LabelSelector}";
        }
        return s;
    }
}
