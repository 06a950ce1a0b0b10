using System.Collections.Immutable;
using System.Net;
using System.Text.RegularExpressions;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes;

internal sealed partial class Translation
{
    /// <summary>What a Pod says about itself, before services and policies are joined to it.</summary>
    private sealed class PodInfo
    {
        public required KubeObject Object { get; init; }
        public required string Namespace { get; init; }
        public required string ServiceAccount { get; init; }
        public required string Node { get; init; }
        public required ImmutableArray<IPAddress> Ips { get; init; }
        public required HealthStatus Status { get; init; }
        public required bool HostNetwork { get; init; }
        public required Dictionary<string, int>? NamedPorts { get; init; }
        public required string WorkloadName { get; init; }
        public required string WorkloadType { get; init; }
        /// <summary>Services whose EndpointSlices list this pod, with the pod's ports for each.</summary>
        public Dictionary<string, ImmutableDictionary<int, int>>? SliceServices { get; set; }
    }

    private readonly List<PodInfo> _podInfos = [];
    private readonly Dictionary<(string Namespace, string Name), PodInfo> _podByName = [];

    private void ParsePods()
    {
        foreach (KubeObject o in _pods)
        {
            if (Parse(o, ParsePod) is not { } pod)
            {
                continue;
            }
            if (!_podByName.TryAdd((pod.Namespace, o.Name), pod))
            {
                Error(o, null, "", $"{Describe(o)} is defined twice; the second is ignored");
                continue;
            }
            _podInfos.Add(pod);
        }
    }

    private static PodInfo? ParsePod(KubeObject o, YamlConfigReader r)
    {
        YamlMappingNode? metadata = KubeYaml.Map(r, o.Body, "metadata", "");
        YamlMappingNode? spec = KubeYaml.Map(r, o.Body, "spec", "");
        YamlMappingNode? status = KubeYaml.Map(r, o.Body, "status", "");

        string? phase = KubeYaml.Str(r, status, "phase", "status");
        if (phase is "Succeeded" or "Failed")
        {
            return null; // a finished pod (a completed Job) serves nothing; Istio drops it too
        }

        string sa = KubeYaml.Str(r, spec, "serviceAccountName", "spec") is { Length: > 0 } s ? s
            : KubeYaml.Str(r, spec, "serviceAccount", "spec") is { Length: > 0 } legacy ? legacy // deprecated alias
            : "default";
        string node = KubeYaml.Str(r, spec, "nodeName", "spec") ?? "";
        bool hostNetwork = KubeYaml.Get(spec, "hostNetwork") is { } hn && (r.Bool(hn, "spec.hostNetwork") ?? false);

        Dictionary<string, int>? named = null;
        YamlSequenceNode? containers = KubeYaml.Seq(r, spec, "containers", "spec");
        for (int i = 0; containers is not null && i < containers.Children.Count; i++)
        {
            string cp = Index("spec.containers", i);
            YamlSequenceNode? ports = KubeYaml.Seq(r, containers.Children[i] as YamlMappingNode, "ports", cp);
            for (int j = 0; ports is not null && j < ports.Children.Count; j++)
            {
                string pp = Index(Child(cp, "ports"), j);
                YamlMappingNode? port = r.Mapping(ports.Children[j], pp);
                int? number = KubeYaml.Port(r, port, "containerPort", pp);
                string? name = KubeYaml.Str(r, port, "name", pp);
                if (number is int n && !string.IsNullOrEmpty(name))
                {
                    named ??= new Dictionary<string, int>(StringComparer.Ordinal);
                    named.TryAdd(name, n);
                }
            }
        }

        // status.podIPs has one address per IP family (dual-stack); podIP is the first of them.
        var ips = ImmutableArray.CreateBuilder<IPAddress>(2);
        YamlSequenceNode? podIps = KubeYaml.Seq(r, status, "podIPs", "status");
        for (int i = 0; podIps is not null && i < podIps.Children.Count; i++)
        {
            string ipp = Index("status.podIPs", i);
            YamlMappingNode? entry = r.Mapping(podIps.Children[i], ipp);
            if (KubeYaml.Get(entry, "ip") is { } ipNode && KubeYaml.Ip(r, ipNode, Child(ipp, "ip")) is { } ip && !ips.Contains(ip))
            {
                ips.Add(ip);
            }
        }
        if (ips.Count == 0 && KubeYaml.Get(status, "podIP") is { } single && KubeYaml.Ip(r, single, "status.podIP") is { } ip1)
        {
            ips.Add(ip1);
        }

        HealthStatus health = HealthStatus.Healthy;
        YamlSequenceNode? conditions = KubeYaml.Seq(r, status, "conditions", "status");
        for (int i = 0; conditions is not null && i < conditions.Children.Count; i++)
        {
            var c = conditions.Children[i] as YamlMappingNode;
            if (KubeYaml.Text(c, "type") == "Ready")
            {
                health = KubeYaml.Text(c, "status") == "True" ? HealthStatus.Healthy : HealthStatus.Unhealthy;
            }
        }
        if (KubeYaml.Get(metadata, "deletionTimestamp") is not null)
        {
            health = HealthStatus.Unhealthy; // terminating: finish what it has, take nothing new
        }

        (string workloadName, string workloadType) = WorkloadOf(r, o, metadata);
        return new PodInfo
        {
            Object = o,
            Namespace = NamespaceOf(o),
            ServiceAccount = sa,
            Node = node,
            Ips = ips.ToImmutable(),
            Status = health,
            HostNetwork = hostNetwork,
            NamedPorts = named,
            WorkloadName = workloadName,
            WorkloadType = workloadType,
        };
    }

    [GeneratedRegex(@"^(.+)-\d{8,11}$", RegexOptions.CultureInvariant)]
    private static partial Regex CronJobName();

    /// <summary>
    /// The workload a pod belongs to, Istio's way (GetDeployMetaFromPod): a generated pod's controller owner; a
    /// ReplicaSet named "&lt;deployment&gt;-&lt;pod-template-hash&gt;" means its Deployment; a Job named
    /// "&lt;cronjob&gt;-&lt;8 to 11 digits&gt;" its CronJob; anything else the pod itself.
    /// </summary>
    private static (string Name, string Type) WorkloadOf(YamlConfigReader r, KubeObject o, YamlMappingNode? metadata)
    {
        if (KubeYaml.Get(metadata, "generateName") is null)
        {
            return (o.Name, "pod");
        }
        YamlSequenceNode? owners = KubeYaml.Seq(r, metadata, "ownerReferences", "metadata");
        for (int i = 0; owners is not null && i < owners.Children.Count; i++)
        {
            var owner = owners.Children[i] as YamlMappingNode;
            if (KubeYaml.Text(owner, "controller") != "true")
            {
                continue;
            }
            string kind = KubeYaml.Text(owner, "kind") ?? "";
            string name = KubeYaml.Text(owner, "name") ?? "";
            if (name.Length == 0)
            {
                break;
            }
            string hash = o.Labels.GetValueOrDefault(KubeLabels.PodTemplateHash) ?? "";
            if (kind == "ReplicaSet" && hash.Length > 0 && name.EndsWith("-" + hash, StringComparison.Ordinal))
            {
                return (name[..^(hash.Length + 1)], "deployment");
            }
            if (kind == "Job")
            {
                Match m = CronJobName().Match(name);
                return m.Success ? (m.Groups[1].Value, "cronjob") : (name, "job");
            }
            return (name, "pod");
        }
        return (o.Name, "pod");
    }

    /// <summary>
    /// Whether a pod is in the ambient mesh (speaks HBONE): its own <c>istio.io/dataplane-mode</c> label
    /// (<c>ambient</c> enrolls it, <c>none</c> opts it out) wins over its namespace's. Host-network pods and pods
    /// with a sidecar are never captured. istio-cni's <c>ambient.istio.io/redirection: enabled</c> on a pod from a
    /// live cluster says it was captured.
    /// </summary>
    private static bool IsEnrolled(KubeObject pod, bool hostNetwork, ImmutableDictionary<string, string> nsLabels)
    {
        if (hostNetwork || pod.Annotations.ContainsKey(KubeLabels.SidecarStatus))
        {
            return false;
        }
        if (pod.Annotations.GetValueOrDefault(KubeLabels.AmbientRedirection) == "enabled")
        {
            return true;
        }
        string? own = pod.Labels.GetValueOrDefault(KubeLabels.DataplaneMode);
        if (own is not null)
        {
            return own == KubeLabels.DataplaneModeAmbient;
        }
        return nsLabels.GetValueOrDefault(KubeLabels.DataplaneMode) == KubeLabels.DataplaneModeAmbient;
    }

    /// <summary>Canonical service name and revision, from the labels Istio reads, in its order.</summary>
    private static (string Name, string Revision) Canonical(ImmutableDictionary<string, string> labels, string workloadName)
    {
        string name = labels.GetValueOrDefault(KubeLabels.CanonicalName)
            ?? labels.GetValueOrDefault(KubeLabels.AppName)
            ?? labels.GetValueOrDefault(KubeLabels.App)
            ?? workloadName;
        string revision = labels.GetValueOrDefault(KubeLabels.CanonicalRevision)
            ?? labels.GetValueOrDefault(KubeLabels.AppVersion)
            ?? labels.GetValueOrDefault(KubeLabels.Version)
            ?? "latest";
        return (name, revision);
    }

    private Locality LocalityOf(ImmutableDictionary<string, string> labels, string node)
    {
        if (labels.TryGetValue(KubeLabels.IstioLocality, out string? l) && l.Length > 0)
        {
            // Label values cannot hold '/', so Istio writes "region.zone.subzone" here.
            string[] parts = l.Split('.', 3);
            return new Locality(parts[0], parts.Length > 1 ? parts[1] : "", parts.Length > 2 ? parts[2] : "");
        }
        return _nodeLocality.GetValueOrDefault(node) ?? NoLocality;
    }

    private static readonly Locality NoLocality = new();

    private void BuildPodWorkloads()
    {
        var services = new List<ServiceInfo>();
        var entries = new List<ServiceEntryHost>();
        var policyScratch = new List<string>();
        foreach (PodInfo pod in _podInfos)
        {
            KubeObject o = pod.Object;
            ImmutableDictionary<string, string> labels = o.Labels;
            ImmutableDictionary<string, string> nsLabels = NamespaceLabels(pod.Namespace);
            bool enrolled = IsEnrolled(o, pod.HostNetwork, nsLabels);
            (string canonicalName, string canonicalRevision) = Canonical(labels, pod.WorkloadName);

            services.Clear();
            _serviceSelectors.Select(pod.Namespace, labels, services);
            entries.Clear();
            _serviceEntrySelectors.Select(pod.Namespace, labels, entries);
            ImmutableDictionary<string, ImmutableDictionary<int, int>> serviceMap =
                ServiceMap(services, pod.NamedPorts, pod.SliceServices, entries);

            _workloadsOut.Add(new Workload
            {
                Uid = $"{options.ClusterId}//Pod/{pod.Namespace}/{o.Name}",
                Name = o.Name,
                Namespace = pod.Namespace,
                ServiceAccount = pod.ServiceAccount,
                WorkloadIps = pod.Ips,
                Protocol = enrolled ? InboundProtocol.Hbone : InboundProtocol.Tcp,
                NetworkMode = pod.HostNetwork ? NetworkMode.HostNetwork : NetworkMode.Standard,
                Node = pod.Node,
                Network = labels.GetValueOrDefault(KubeLabels.Network) ?? nsLabels.GetValueOrDefault(KubeLabels.Network) ?? "",
                ClusterId = options.ClusterId,
                WorkloadName = pod.WorkloadName,
                WorkloadType = pod.WorkloadType,
                CanonicalName = canonicalName,
                CanonicalRevision = canonicalRevision,
                Status = pod.Status,
                Locality = LocalityOf(labels, pod.Node),
                Waypoint = IsWaypointInfrastructure(labels) ? null : WaypointFor(o, labels, pod.Namespace, WaypointTraffic.Workload),
                AuthorizationPolicies = PoliciesFor(pod.Namespace, labels, policyScratch),
                Services = serviceMap,
                Labels = labels,
            });
        }
    }

    /// <summary>
    /// A workload's services: those whose selector picks it (unless EndpointSlices decide that service's endpoints),
    /// those whose EndpointSlices list it, and the ServiceEntry hosts whose workloadSelector picks it.
    /// </summary>
    private static ImmutableDictionary<string, ImmutableDictionary<int, int>> ServiceMap(List<ServiceInfo> selected,
        Dictionary<string, int>? namedPorts, Dictionary<string, ImmutableDictionary<int, int>>? fromSlices, List<ServiceEntryHost> entries)
    {
        int count = selected.Count + (fromSlices?.Count ?? 0) + entries.Count;
        if (count == 0)
        {
            return ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty;
        }
        var b = ImmutableDictionary.CreateBuilder<string, ImmutableDictionary<int, int>>(StringComparer.Ordinal);
        foreach (ServiceInfo s in selected)
        {
            if (!s.HasSlices)
            {
                b[s.Model.Key] = PortsFor(s, namedPorts);
            }
        }
        if (fromSlices is not null)
        {
            foreach (KeyValuePair<string, ImmutableDictionary<int, int>> kv in fromSlices)
            {
                b[kv.Key] = kv.Value;
            }
        }
        foreach (ServiceEntryHost e in entries)
        {
            b[e.Service.Key] = PortsFor(e.Info, namedPorts);
        }
        return b.ToImmutable();
    }
}
