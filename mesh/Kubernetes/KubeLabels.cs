namespace Ambient.Mesh.Kubernetes;

/// <summary>The labels and annotations the translation reads, with Istio's and Kubernetes' names.</summary>
public static class KubeLabels
{
    /// <summary>On a Namespace (<c>ambient</c> enrolls its pods) or a Pod (<c>ambient</c> enrolls it, <c>none</c> opts it out).</summary>
    public const string DataplaneMode = "istio.io/dataplane-mode";
    public const string DataplaneModeAmbient = "ambient";
    public const string DataplaneModeNone = "none";

    /// <summary>On a Namespace, Service, ServiceEntry or Pod: the waypoint Gateway to use; <c>none</c> opts out.</summary>
    public const string UseWaypoint = "istio.io/use-waypoint";
    /// <summary>The namespace of the waypoint named by <see cref="UseWaypoint"/> (default: the object's own).</summary>
    public const string UseWaypointNamespace = "istio.io/use-waypoint-namespace";
    /// <summary>On a waypoint Gateway: service (default), workload, all, none.</summary>
    public const string WaypointFor = "istio.io/waypoint-for";

    /// <summary>On the pods of a Gateway (set by its deployment controller).</summary>
    public const string GatewayName = "gateway.networking.k8s.io/gateway-name";
    /// <summary>On the Deployment/Service/pods Istio creates for a waypoint.</summary>
    public const string GatewayManaged = "gateway.istio.io/managed";
    public const string GatewayManagedMesh = "istio.io-mesh-controller";
    public const string WaypointGatewayClass = "istio-waypoint";

    /// <summary>Set by istio-cni on a pod it captured; <c>enabled</c> means the pod speaks HBONE.</summary>
    public const string AmbientRedirection = "ambient.istio.io/redirection";
    /// <summary>Set by the sidecar injector: a pod with a sidecar is not captured by ambient.</summary>
    public const string SidecarStatus = "sidecar.istio.io/status";

    public const string CanonicalName = "service.istio.io/canonical-name";
    public const string CanonicalRevision = "service.istio.io/canonical-revision";
    public const string AppName = "app.kubernetes.io/name";
    public const string AppVersion = "app.kubernetes.io/version";
    public const string App = "app";
    public const string Version = "version";

    /// <summary>On an AuthorizationPolicy: "true" evaluates it without enforcing it.</summary>
    public const string DryRun = "istio.io/dry-run";

    /// <summary>On an EndpointSlice: the Service it belongs to.</summary>
    public const string ServiceName = "kubernetes.io/service-name";

    /// <summary>On a Pod or Namespace: the network of its workloads (multi-network meshes).</summary>
    public const string Network = "topology.istio.io/network";
    public const string Region = "topology.kubernetes.io/region";
    public const string Zone = "topology.kubernetes.io/zone";
    public const string Subzone = "topology.istio.io/subzone";
    /// <summary>On a Pod: "region.zone.subzone", overriding its node's locality.</summary>
    public const string IstioLocality = "istio-locality";

    /// <summary>On a Service (or <c>spec.trafficDistribution</c>): <c>PreferClose</c> prefers endpoints near the client.</summary>
    public const string TrafficDistribution = "networking.istio.io/traffic-distribution";

    /// <summary>The pod template hash Deployments put on their ReplicaSets' pods.</summary>
    public const string PodTemplateHash = "pod-template-hash";
}
