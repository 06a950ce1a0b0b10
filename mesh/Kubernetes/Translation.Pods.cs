using System.Collections.Immutable;
using System.Net;
using System.Runtime.InteropServices;
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
        public required NamedPort[]? NamedPorts { get; init; }
        public required string WorkloadName { get; init; }
        public required string WorkloadType { get; init; }
    }

    private readonly List<PodInfo> _podInfos = [];
    /// <summary>Per run (a PodInfo is shared between runs): services whose EndpointSlices list a pod, with its ports for each.</summary>
    private readonly Dictionary<PodInfo, Dictionary<string, ImmutableDictionary<int, int>>> _sliceServices = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<(string Namespace, string Name), PodInfo> _podByName = [];

    private void ParsePods()
    {
        foreach (KubeObject o in _pods)
        {
            if (ParseOnce(o, ParsePod) is not { } pod)
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

    /// <summary>
    /// Reads the fields of a Pod the mesh needs, one pass over each of metadata, spec and status (a Pod from the API
    /// server has dozens of fields; looking each needed one up separately would scan them again and again).
    /// </summary>
    private static PodInfo? ParsePod(KubeObject o, YamlConfigReader r)
    {
        YamlMappingNode? metadata = KubeYaml.Map(r, o.Body, "metadata", "");
        YamlMappingNode? spec = KubeYaml.Map(r, o.Body, "spec", "");
        YamlMappingNode? status = KubeYaml.Map(r, o.Body, "status", "");

        HealthStatus health = HealthStatus.Healthy;
        ImmutableArray<IPAddress> ips = [];
        IPAddress? podIp = null;
        for (int n = 0; status is not null && n < status.Children.Count; n++)
        {
            (string key, YamlNode value) = Entry(status, n);
            switch (key)
            {
                case "phase" when value is YamlScalarNode { Value: "Succeeded" or "Failed" }:
                    return null; // a finished pod (a completed Job) serves nothing; Istio drops it too
                case "podIPs":
                    ips = PodIps(r, value);
                    break;
                case "podIP":
                    podIp = KubeYaml.Ip(r, value, "status.podIP");
                    break;
                case "conditions" when value is YamlSequenceNode conditions:
                    for (int i = 0; i < conditions.Children.Count; i++)
                    {
                        var c = conditions.Children[i] as YamlMappingNode;
                        if (KubeYaml.Text(c, "type") == "Ready")
                        {
                            health = KubeYaml.Text(c, "status") == "True" ? HealthStatus.Healthy : HealthStatus.Unhealthy;
                        }
                    }
                    break;
            }
        }
        if (ips.IsEmpty && podIp is not null)
        {
            ips = [podIp]; // podIP is the first of podIPs: old API servers and hand-written status have only it
        }

        string sa = "default", node = "";
        bool hostNetwork = false;
        NamedPort[]? named = null;
        for (int n = 0; spec is not null && n < spec.Children.Count; n++)
        {
            (string key, YamlNode value) = Entry(spec, n);
            switch (key)
            {
                case "serviceAccountName":
                    sa = r.String(value, "spec.serviceAccountName") is { Length: > 0 } s ? s : sa;
                    break;
                case "serviceAccount" when sa == "default": // the deprecated alias; serviceAccountName wins
                    sa = r.String(value, "spec.serviceAccount") is { Length: > 0 } legacy ? legacy : sa;
                    break;
                case "nodeName":
                    node = r.String(value, "spec.nodeName") ?? "";
                    break;
                case "hostNetwork":
                    hostNetwork = r.Bool(value, "spec.hostNetwork") ?? false;
                    break;
                case "containers":
                    named = ContainerPorts(r, value);
                    break;
            }
        }

        string workloadName = o.Name, workloadType = "pod";
        bool generated = false;
        YamlNode? owners = null;
        for (int n = 0; metadata is not null && n < metadata.Children.Count; n++)
        {
            (string key, YamlNode value) = Entry(metadata, n);
            switch (key)
            {
                case "deletionTimestamp":
                    health = HealthStatus.Unhealthy; // terminating: finish what it has, take nothing new
                    break;
                case "generateName":
                    generated = true;
                    break;
                case "ownerReferences":
                    owners = value;
                    break;
            }
        }
        if (generated && owners is YamlSequenceNode ownerSeq)
        {
            (workloadName, workloadType) = WorkloadOf(o, ownerSeq);
        }

        return new PodInfo
        {
            Object = o,
            Namespace = NamespaceOf(o),
            ServiceAccount = sa,
            Node = node,
            Ips = ips,
            Status = health,
            HostNetwork = hostNetwork,
            NamedPorts = named,
            WorkloadName = workloadName,
            WorkloadType = workloadType,
        };
    }

    /// <summary>The key and value of a mapping's n-th entry; ("", null) for YAML null values and non-string keys, which no case matches.</summary>
    private static (string Key, YamlNode Value) Entry(YamlMappingNode map, int n)
    {
        KeyValuePair<YamlNode, YamlNode> kv = map.Children[n];
        return kv.Key is YamlScalarNode { Value: { } key } && !YamlConfigReader.IsNull(kv.Value) ? (key, kv.Value) : ("", kv.Value);
    }

    /// <summary>status.podIPs: one address per IP family (dual-stack), duplicates dropped.</summary>
    private static ImmutableArray<IPAddress> PodIps(YamlConfigReader r, YamlNode node)
    {
        if (node is not YamlSequenceNode { Children.Count: > 0 } seq)
        {
            r.Sequence(node, "status.podIPs");
            return [];
        }
        var list = new IPAddress[seq.Children.Count];
        int count = 0;
        for (int i = 0; i < seq.Children.Count; i++)
        {
            YamlMappingNode? entry = KubeYaml.AsMap(r, seq.Children[i], new FieldPath("status.podIPs", i));
            if (KubeYaml.Get(entry, "ip") is { } ipNode && KubeYaml.Ip(r, ipNode, new FieldPath("status.podIPs", i, "ip")) is { } ip
                && Array.IndexOf(list, ip, 0, count) < 0)
            {
                list[count++] = ip;
            }
        }
        return ImmutableCollectionsMarshal.AsImmutableArray(count == list.Length ? list : list[..count]);
    }

    /// <summary>The named container ports, which a Service's named targetPort refers to (the first of a name wins).</summary>
    private static NamedPort[]? ContainerPorts(YamlConfigReader r, YamlNode node)
    {
        if (node is not YamlSequenceNode containers)
        {
            r.Sequence(node, "spec.containers");
            return null;
        }
        NamedPort[]? named = null;
        int count = 0;
        for (int i = 0; i < containers.Children.Count; i++)
        {
            YamlMappingNode? container = KubeYaml.AsMap(r, containers.Children[i], new FieldPath("spec.containers", i));
            YamlSequenceNode? ports = KubeYaml.Seq(r, container, "ports", new FieldPath("spec.containers", i));
            for (int j = 0; ports is not null && j < ports.Children.Count; j++)
            {
                var pp = new FieldPath("spec.containers", i, "ports", j);
                YamlMappingNode? port = KubeYaml.AsMap(r, ports.Children[j], pp);
                int? number = KubeYaml.Port(r, port, "containerPort", pp);
                string? name = KubeYaml.Str(r, port, "name", pp);
                if (number is int n && !string.IsNullOrEmpty(name) && NamedPort.Find(named.AsSpan(0, count), name) is null)
                {
                    if (named is null || count == named.Length)
                    {
                        Array.Resize(ref named, count == 0 ? ports.Children.Count : count * 2);
                    }
                    named[count++] = new NamedPort(name, n);
                }
            }
        }
        return named is null || count == named.Length ? named : named[..count];
    }

    [GeneratedRegex(@"^(.+)-\d{8,11}$", RegexOptions.CultureInvariant)]
    private static partial Regex CronJobName();

    /// <summary>
    /// The workload a pod belongs to, Istio's way (GetDeployMetaFromPod): a generated pod's controller owner; a
    /// ReplicaSet named "&lt;deployment&gt;-&lt;pod-template-hash&gt;" means its Deployment; a Job named
    /// "&lt;cronjob&gt;-&lt;8 to 11 digits&gt;" its CronJob; any other controller its own name (StatefulSet,
    /// DaemonSet, a bare ReplicaSet). The caller only asks for generated pods (metadata.generateName), as Istio does.
    /// </summary>
    private static (string Name, string Type) WorkloadOf(KubeObject o, YamlSequenceNode owners)
    {
        for (int i = 0; i < owners.Children.Count; i++)
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
            if (kind == "ReplicaSet" && hash.Length > 0 && name.Length > hash.Length + 1
                && name.EndsWith(hash, StringComparison.Ordinal) && name[^(hash.Length + 1)] == '-')
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
                _sliceServices.Count == 0 && entries.Count == 0 && services.Count == 0
                    ? ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty
                    : ServiceMap(services, pod.NamedPorts, _sliceServices.GetValueOrDefault(pod), entries);

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
    /// those whose EndpointSlices list it, and the ServiceEntry hosts whose workloadSelector picks it. The replicas
    /// of one Deployment have equal maps, so a one-service map is built once and shared.
    /// </summary>
    private ImmutableDictionary<string, ImmutableDictionary<int, int>> ServiceMap(List<ServiceInfo> selected,
        NamedPort[]? namedPorts, Dictionary<string, ImmutableDictionary<int, int>>? fromSlices, List<ServiceEntryHost> entries)
    {
        int count = selected.Count + (fromSlices?.Count ?? 0) + entries.Count;
        if (count == 0)
        {
            return ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty;
        }
        if (count == 1 && selected.Count == 1 && !selected[0].HasSlices)
        {
            ServiceInfo only = selected[0];
            ImmutableDictionary<int, int> ports = PortsFor(only, namedPorts);
            if (!_singleServiceMaps.TryGetValue((only.Model.Key, ports), out var shared))
            {
                shared = ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty.WithComparers(StringComparer.Ordinal).Add(only.Model.Key, ports);
                _singleServiceMaps[(only.Model.Key, ports)] = shared;
            }
            return shared;
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

    /// <summary>One-service maps by (service key, port map instance): port maps are shared too, so reference equality is enough.</summary>
    private readonly Dictionary<(string, ImmutableDictionary<int, int>), ImmutableDictionary<string, ImmutableDictionary<int, int>>> _singleServiceMaps = [];
}
