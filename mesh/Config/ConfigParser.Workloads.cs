using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Config;

internal sealed partial class ConfigParser
{
    // Fields of ztunnel's Workload (src/state/workload.rs, flattened into LocalWorkload) plus LocalWorkload's
    // `services` map. The old singular `workloadIp` and the proto's `tunnelProtocol` are accepted as aliases;
    // `labels` is this project's addition.
    private static readonly string[] WorkloadKeys =
    [
        "uid", "name", "namespace", "serviceAccount", "trustDomain", "workloadIps", "workloadIp", "protocol",
        "tunnelProtocol", "networkMode", "node", "network", "clusterId", "workloadName", "workloadType",
        "canonicalName", "canonicalRevision", "hostname", "status", "capacity", "locality", "waypoint",
        "authorizationPolicies", "services", "labels",
        // Istio fields this agent does not use: accepted and ignored.
        "networkGateway", "nativeTunnel", "applicationTunnel",
    ];

    private static readonly string[] LocalityKeys = ["region", "zone", "subzone"];

    private static readonly (string, InboundProtocol)[] Protocols =
        [("TCP", InboundProtocol.Tcp), ("HBONE", InboundProtocol.Hbone), ("NONE", InboundProtocol.Tcp)];

    private static readonly (string, NetworkMode)[] NetworkModes =
        [("Standard", NetworkMode.Standard), ("HostNetwork", NetworkMode.HostNetwork)];

    private static readonly (string, HealthStatus)[] Statuses =
        [("Healthy", HealthStatus.Healthy), ("Unhealthy", HealthStatus.Unhealthy)];

    private ImmutableArray<Workload> ParseWorkloads(YamlSequenceNode seq, string path) =>
        ParseEntries(seq, path, "workload", _workloadNodes, ParseWorkload);

    private readonly List<YamlMappingNode?> _workloadNodes = [];

    private Workload? ParseWorkload(YamlMappingNode map, string path)
    {
        string? uid = null, name = null, ns = null;
        string serviceAccount = "default", trustDomain = "", node = "", network = "", clusterId = "";
        string workloadName = "", workloadType = "pod", canonicalName = "", canonicalRevision = "", hostname = "";
        var ips = ImmutableArray.CreateBuilder<IPAddress>();
        InboundProtocol protocol = InboundProtocol.Tcp;
        NetworkMode networkMode = NetworkMode.Standard;
        HealthStatus status = HealthStatus.Healthy;
        int capacity = 1;
        var locality = new Locality();
        GatewayAddress? waypoint = null;
        ImmutableArray<string> policies = [];
        var services = ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty;
        var labels = ImmutableDictionary<string, string>.Empty;
        bool ok = true;

        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            string f = Child(path, key);
            switch (key)
            {
                case "uid":
                    uid = r.String(value, f);
                    break;
                case "name":
                    name = r.String(value, f);
                    break;
                case "namespace":
                    ns = r.String(value, f);
                    break;
                case "serviceAccount":
                    serviceAccount = NonEmpty(r.String(value, f)) ?? "default";
                    break;
                case "trustDomain":
                    trustDomain = r.String(value, f) ?? "";
                    break;
                case "workloadIps":
                    YamlSequenceNode? ipSeq = r.Sequence(value, f);
                    for (int i = 0; ipSeq is not null && i < ipSeq.Children.Count; i++)
                    {
                        if (Ip(ipSeq.Children[i], Index(f, i)) is { } ip)
                        {
                            ips.Add(ip);
                        }
                    }
                    break;
                case "workloadIp":
                    if (Ip(value, f) is { } single)
                    {
                        ips.Add(single);
                    }
                    break;
                case "protocol":
                case "tunnelProtocol":
                    protocol = r.Enum(value, f, Protocols) ?? protocol;
                    break;
                case "networkMode":
                    networkMode = r.Enum(value, f, NetworkModes) ?? networkMode;
                    break;
                case "node":
                    node = r.String(value, f) ?? "";
                    break;
                case "network":
                    network = r.String(value, f) ?? "";
                    break;
                case "clusterId":
                    clusterId = r.String(value, f) ?? "";
                    break;
                case "workloadName":
                    workloadName = r.String(value, f) ?? "";
                    break;
                case "workloadType":
                    workloadType = NonEmpty(r.String(value, f)) ?? "pod";
                    break;
                case "canonicalName":
                    canonicalName = r.String(value, f) ?? "";
                    break;
                case "canonicalRevision":
                    canonicalRevision = r.String(value, f) ?? "";
                    break;
                case "hostname":
                    hostname = r.String(value, f) ?? "";
                    break;
                case "status":
                    status = r.Enum(value, f, Statuses) ?? status;
                    break;
                case "capacity":
                    capacity = (int?)r.Integer(value, f, 0, int.MaxValue) ?? capacity;
                    break;
                case "locality":
                    locality = ParseLocality(value, f);
                    break;
                case "waypoint":
                    waypoint = IsNull(value) ? null : Gateway(value, f);
                    break;
                case "authorizationPolicies":
                    YamlSequenceNode? polSeq = r.Sequence(value, f);
                    var polKeys = ImmutableArray.CreateBuilder<string>();
                    for (int i = 0; polSeq is not null && i < polSeq.Children.Count; i++)
                    {
                        string? pk = r.String(polSeq.Children[i], Index(f, i));
                        if (pk is null)
                        {
                            continue;
                        }
                        if (IsNamespacedName(pk))
                        {
                            polKeys.Add(pk);
                        }
                        else
                        {
                            r.Error(polSeq.Children[i], Index(f, i), $"'{pk}' is not a policy key \"<namespace>/<name>\"");
                        }
                    }
                    policies = polKeys.ToImmutable();
                    break;
                case "services":
                    services = ParseWorkloadServices(value, f);
                    break;
                case "labels":
                    labels = ParseLabels(value, f);
                    break;
                case "networkGateway":
                case "nativeTunnel":
                case "applicationTunnel":
                    break;
                default:
                    r.UnknownKey(k, path, WorkloadKeys, strict: false);
                    break;
            }
        }

        if (string.IsNullOrEmpty(name))
        {
            r.Error(map, Child(path, "name"), "required: the workload's name (e.g. the pod name)");
            ok = false;
        }
        if (string.IsNullOrEmpty(ns))
        {
            r.Error(map, Child(path, "namespace"), "required: the workload's namespace");
            ok = false;
        }
        if (!ok)
        {
            return null;
        }
        // ztunnel keys workloads by uid and defaults it to "", so two uid-less workloads silently replace
        // each other there. Derive a Kubernetes-style uid instead, so old configs without uids keep working.
        string effectiveUid = string.IsNullOrEmpty(uid)
            ? $"{(clusterId.Length > 0 ? clusterId : "Kubernetes")}//v1/Pod/{ns}/{name}"
            : uid;
        return new Workload
        {
            Uid = effectiveUid,
            Name = name!,
            Namespace = ns!,
            ServiceAccount = serviceAccount,
            TrustDomain = trustDomain,
            WorkloadIps = ips.ToImmutable(),
            Protocol = protocol,
            NetworkMode = networkMode,
            Node = node,
            Network = network,
            ClusterId = clusterId,
            WorkloadName = workloadName,
            WorkloadType = workloadType,
            CanonicalName = canonicalName,
            CanonicalRevision = canonicalRevision,
            Hostname = hostname,
            Status = status,
            Capacity = capacity,
            Locality = locality,
            Waypoint = waypoint,
            AuthorizationPolicies = policies,
            Services = services,
            Labels = labels,
        };
    }

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static bool IsNamespacedName(string s)
    {
        int slash = s.IndexOf('/');
        return slash > 0 && slash < s.Length - 1;
    }

    private Locality ParseLocality(YamlNode node, string path)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return new Locality();
        }
        string region = "", zone = "", subzone = "";
        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            switch (key)
            {
                case "region":
                    region = r.String(value, Child(path, key)) ?? "";
                    break;
                case "zone":
                    zone = r.String(value, Child(path, key)) ?? "";
                    break;
                case "subzone":
                    subzone = r.String(value, Child(path, key)) ?? "";
                    break;
                default:
                    r.UnknownKey(k, path, LocalityKeys, strict: false);
                    break;
            }
        }
        return new Locality(region, zone, subzone);
    }

    /// <summary>LocalWorkload.services: <c>"namespace/hostname": {servicePort: targetPort}</c>.</summary>
    private ImmutableDictionary<string, ImmutableDictionary<int, int>> ParseWorkloadServices(YamlNode node, string path)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty;
        }
        var b = ImmutableDictionary.CreateBuilder<string, ImmutableDictionary<int, int>>(StringComparer.Ordinal);
        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            string f = $"{path}[\"{key}\"]";
            if (!IsNamespacedName(key))
            {
                // ztunnel rejects the whole config for this (NamespacedHostnameParse).
                r.Error(k, f, $"'{key}' is not a service key \"<namespace>/<hostname>\"");
                continue;
            }
            b[key] = IsNull(value) ? ImmutableDictionary<int, int>.Empty : PortMap(value, f);
        }
        return b.ToImmutable();
    }

    private ImmutableDictionary<string, string> ParseLabels(YamlNode node, string path)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return ImmutableDictionary<string, string>.Empty;
        }
        var b = ImmutableDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach ((_, string key, YamlNode value) in r.Entries(map, path))
        {
            b[key] = r.String(value, Child(path, key)) ?? "";
        }
        return b.ToImmutable();
    }
}
