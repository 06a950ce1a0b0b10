using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes;

/// <summary>Istio's networking.istio.io ServiceEntry and WorkloadEntry (v1, v1beta1, v1alpha3: the same schema).</summary>
internal sealed partial class Translation
{
    private static readonly string[] ServiceEntrySpecKeys =
        ["hosts", "addresses", "ports", "location", "resolution", "endpoints", "workloadSelector", "exportTo", "subjectAltNames"];
    private static readonly string[] WorkloadEntrySpecKeys = ["address", "ports", "labels", "network", "locality", "weight", "serviceAccount"];
    private static readonly string[] ServiceEntryPortKeys = ["number", "protocol", "name", "targetPort"];
    private enum Resolution
    {
        None,
        Static,
        Dns,
        DnsRoundRobin,
    }

    private static readonly (string, Resolution)[] Resolutions =
        [("NONE", Resolution.None), ("STATIC", Resolution.Static), ("DNS", Resolution.Dns), ("DNS_ROUND_ROBIN", Resolution.DnsRoundRobin)];
    private const string TunnelLabel = "networking.istio.io/tunnel";

    /// <summary>One host of a ServiceEntry: a Service of its own, sharing the entry's ports and selector.</summary>
    private sealed record ServiceEntryHost(Service Service, ServiceInfo Info);

    /// <summary>A WorkloadEntry spec (standalone, or inline in a ServiceEntry's endpoints).</summary>
    private sealed record EntrySpec(string Address, ImmutableDictionary<string, int> Ports, ImmutableDictionary<string, string> Labels,
        string Network, Locality Locality, int Weight, string ServiceAccount);

    private sealed record ServiceEntryInfo(KubeObject Object, ImmutableArray<ServiceEntryHost> Hosts, ImmutableArray<EntrySpec> Endpoints,
        ImmutableDictionary<string, string>? WorkloadSelector, Resolution Resolution);

    private readonly SelectorIndex<ServiceEntryHost> _serviceEntrySelectors = new();
    private readonly List<ServiceEntryInfo> _serviceEntryInfos = [];

    private void TranslateServiceEntries()
    {
        foreach (KubeObject o in _serviceEntries)
        {
            if (Parse(o, ParseServiceEntry) is not { } se)
            {
                continue;
            }
            var kept = ImmutableArray.CreateBuilder<ServiceEntryHost>(se.Hosts.Length);
            foreach (ServiceEntryHost h in se.Hosts)
            {
                // Two entries (or an entry and a Service) for one host of one namespace: the first wins, like a duplicate object.
                if (!_serviceKeys.Add(h.Service.Key))
                {
                    Error(o, null, "spec.hosts", $"host {h.Service.Hostname} is already defined in namespace {h.Service.Namespace}; this entry's is ignored");
                    continue;
                }
                kept.Add(h);
                _servicesOut.Add(h.Service);
                if (se.WorkloadSelector is { Count: > 0 } sel)
                {
                    _serviceEntrySelectors.Add(h.Service.Namespace, sel, h);
                }
            }
            _serviceEntryInfos.Add(se with { Hosts = kept.ToImmutable() });
        }
    }

    private ServiceEntryInfo? ParseServiceEntry(KubeObject o, YamlConfigReader r)
    {
        string ns = NamespaceOf(o);
        YamlMappingNode? spec = KubeYaml.Map(r, o.Body, "spec", "");
        foreach ((YamlScalarNode k, string key, _) in spec is null ? [] : r.Entries(spec, "spec"))
        {
            if (Array.IndexOf(ServiceEntrySpecKeys, key) < 0)
            {
                r.UnknownKey(k, "spec", ServiceEntrySpecKeys, strict: false);
            }
        }
        ImmutableArray<string> hosts = KubeYaml.Strings(r, spec, "hosts", "spec");
        if (hosts.IsEmpty)
        {
            r.Error(spec ?? o.Body, "spec.hosts", "required: at least one host");
        }
        Resolution resolution = Resolution.None;
        if (KubeYaml.Get(spec, "resolution") is { } resNode)
        {
            resolution = r.Enum(resNode, "spec.resolution", Resolutions) ?? resolution;
        }

        var vips = ImmutableArray.CreateBuilder<NetworkAddress>();
        YamlSequenceNode? addresses = KubeYaml.Seq(r, spec, "addresses", "spec");
        for (int i = 0; addresses is not null && i < addresses.Children.Count; i++)
        {
            string p = Index("spec.addresses", i);
            string? text = r.String(addresses.Children[i], p);
            if (text is null)
            {
                continue;
            }
            if (ConfigValues.TryParseIp(text, out IPAddress ip, out _))
            {
                vips.Add(new NetworkAddress("", ip));
            }
            else if (ConfigValues.TryParseCidr(text, out IpNet net, out _))
            {
                if (net.PrefixLength == (net.Network.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128))
                {
                    vips.Add(new NetworkAddress("", net.Network));
                }
                else
                {
                    r.Warning(addresses.Children[i], p, $"'{text}' is a range; ztunnel matches service addresses exactly, so this one is not used");
                }
            }
            else
            {
                r.Error(addresses.Children[i], p, $"'{text}' is not an IP address or CIDR");
            }
        }
        if (vips.Count == 0)
        {
            // Istio's IP auto-allocation writes the addresses it picked into status.addresses.
            YamlSequenceNode? allocated = KubeYaml.Seq(r, KubeYaml.Map(r, o.Body, "status", ""), "addresses", "status");
            for (int i = 0; allocated is not null && i < allocated.Children.Count; i++)
            {
                if (KubeYaml.Get(allocated.Children[i] as YamlMappingNode, "value") is { } v
                    && KubeYaml.Ip(r, v, Child(Index("status.addresses", i), "value")) is { } ip && !HasVip(vips, ip))
                {
                    vips.Add(new NetworkAddress("", ip));
                }
            }
        }

        var ports = new List<ServicePort>();
        YamlSequenceNode? portSeq = KubeYaml.Seq(r, spec, "ports", "spec");
        for (int i = 0; portSeq is not null && i < portSeq.Children.Count; i++)
        {
            string p = Index("spec.ports", i);
            YamlMappingNode? map = r.Mapping(portSeq.Children[i], p);
            if (map is null)
            {
                continue;
            }
            foreach ((YamlScalarNode k, string key, _) in r.Entries(map, p))
            {
                if (Array.IndexOf(ServiceEntryPortKeys, key) < 0)
                {
                    r.UnknownKey(k, p, ServiceEntryPortKeys, strict: false);
                }
            }
            int? number = KubeYaml.Port(r, map, "number", p);
            if (number is null)
            {
                if (KubeYaml.Get(map, "number") is null)
                {
                    r.Error(map, Child(p, "number"), "required: the port number");
                }
                continue;
            }
            int target = KubeYaml.Port(r, map, "targetPort", p) ?? number.Value;
            if (!ports.Exists(x => x.Port == number.Value))
            {
                string name = KubeYaml.Str(r, map, "name", p) ?? "";
                // A ServiceEntry port states its protocol outright; the name is the fallback as for a Service.
                ports.Add(new ServicePort(name, number.Value, target, null, DeclaredProtocol(KubeYaml.Str(r, map, "protocol", p), name)));
            }
        }
        ServicePort[] portArray = [.. ports];

        ImmutableDictionary<string, string>? workloadSelector = null;
        if (KubeYaml.Map(r, spec, "workloadSelector", "spec") is { } ws)
        {
            workloadSelector = KubeYaml.Get(ws, "labels") is { } l
                ? KubeYaml.StringMap(r, l, "spec.workloadSelector.labels")
                : ImmutableDictionary<string, string>.Empty;
        }

        var endpoints = ImmutableArray.CreateBuilder<EntrySpec>();
        YamlSequenceNode? epSeq = KubeYaml.Seq(r, spec, "endpoints", "spec");
        for (int i = 0; epSeq is not null && i < epSeq.Children.Count; i++)
        {
            string p = Index("spec.endpoints", i);
            if (r.Mapping(epSeq.Children[i], p) is { } map && ParseEntrySpec(r, map, p, resolution) is { } ep)
            {
                endpoints.Add(ep);
            }
        }
        if (workloadSelector is not null && endpoints.Count > 0)
        {
            r.Error(KubeYaml.Get(spec, "workloadSelector"), "spec.workloadSelector", "workloadSelector and endpoints are mutually exclusive");
        }

        ImmutableArray<string> sans = KubeYaml.Strings(r, spec, "subjectAltNames", "spec");
        GatewayAddress? waypoint = WaypointFor(o, o.Labels, ns, WaypointTraffic.Service);
        ImmutableDictionary<int, int> modelPorts = ModelPorts(portArray);
        var hostInfos = ImmutableArray.CreateBuilder<ServiceEntryHost>(hosts.Length);
        foreach (string host in hosts)
        {
            var service = new Service
            {
                Name = o.Name,
                Namespace = ns,
                Hostname = host,
                Vips = vips.ToImmutable(),
                Ports = modelPorts,
                PortProtocols = PortProtocols(portArray),
                SubjectAltNames = sans,
                Waypoint = waypoint,
            };
            var info = new ServiceInfo { Model = service, Ports = portArray, Selector = workloadSelector ?? ImmutableDictionary<string, string>.Empty, NumericPorts = modelPorts };
            hostInfos.Add(new ServiceEntryHost(service, info));
        }
        return new ServiceEntryInfo(o, hostInfos.ToImmutable(), endpoints.ToImmutable(), workloadSelector, resolution);
    }

    /// <summary>A WorkloadEntry spec: <paramref name="resolution"/> says whether a non-IP address is allowed (DNS).</summary>
    private static EntrySpec? ParseEntrySpec(YamlConfigReader r, YamlMappingNode map, string path, Resolution resolution)
    {
        string address = "", network = "", sa = "default";
        var ports = ImmutableDictionary<string, int>.Empty;
        var labels = ImmutableDictionary<string, string>.Empty;
        Locality locality = NoLocality;
        int weight = 1;
        YamlNode? addressNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            string f = Child(path, key);
            switch (key)
            {
                case "address":
                    addressNode = value;
                    address = r.String(value, f) ?? "";
                    break;
                case "ports":
                    var pb = ImmutableDictionary.CreateBuilder<string, int>(StringComparer.Ordinal);
                    YamlMappingNode? pm = r.Mapping(value, f);
                    foreach ((_, string name, YamlNode pv) in pm is null ? [] : r.Entries(pm, f))
                    {
                        if (r.Port(pv, $"{f}[\"{name}\"]", allowZero: false) is int port)
                        {
                            pb[name] = port;
                        }
                    }
                    ports = pb.ToImmutable();
                    break;
                case "labels":
                    labels = KubeYaml.StringMap(r, value, f);
                    break;
                case "network":
                    network = r.String(value, f) ?? "";
                    break;
                case "locality":
                    // "region/zone/subzone", any suffix may be left out.
                    string[] parts = (r.String(value, f) ?? "").Split('/', 3);
                    locality = new Locality(parts[0], parts.Length > 1 ? parts[1] : "", parts.Length > 2 ? parts[2] : "");
                    break;
                case "weight":
                    weight = (int?)r.Integer(value, f, 0, int.MaxValue) ?? weight;
                    break;
                case "serviceAccount":
                    sa = r.String(value, f) is { Length: > 0 } s ? s : sa;
                    break;
                default:
                    r.UnknownKey(k, path, WorkloadEntrySpecKeys, strict: false);
                    break;
            }
        }
        if (address.Length == 0)
        {
            if (network.Length == 0)
            {
                r.Error(addressNode ?? map, Child(path, "address"), "required: the workload's IP address (or DNS name with resolution DNS)");
                return null;
            }
        }
        else if (address.StartsWith("unix://", StringComparison.Ordinal))
        {
            r.Warning(addressNode, Child(path, "address"), "unix domain socket endpoints are for sidecars; ztunnel cannot reach them, ignored");
            return null;
        }
        else if (!ConfigValues.TryParseIp(address, out _, out string error) && resolution is not (Resolution.Dns or Resolution.DnsRoundRobin))
        {
            r.Error(addressNode, Child(path, "address"), $"{error} (a hostname needs resolution: DNS)");
            return null;
        }
        return new EntrySpec(address, ports, labels, network, locality, weight, sa);
    }

    private void TranslateWorkloadEntries()
    {
        var services = new List<ServiceInfo>();
        var entries = new List<ServiceEntryHost>();
        var policyScratch = new List<string>();
        var seen = new HashSet<(string, string)>();
        foreach (KubeObject o in _workloadEntries)
        {
            string ns = NamespaceOf(o);
            if (ParseOnce(o, static (o, r) => ParseEntrySpec(r, KubeYaml.Map(r, o.Body, "spec", "") ?? new YamlMappingNode(), "spec", Resolution.Dns)) is not { } spec)
            {
                continue;
            }
            if (!seen.Add((ns, o.Name)))
            {
                Error(o, null, "", $"{Describe(o)} is defined twice; the second is ignored");
                continue;
            }
            services.Clear();
            _serviceSelectors.Select(ns, spec.Labels, services);
            entries.Clear();
            _serviceEntrySelectors.Select(ns, spec.Labels, entries);
            var map = ImmutableDictionary.CreateBuilder<string, ImmutableDictionary<int, int>>(StringComparer.Ordinal);
            NamedPort[]? named = spec.Ports.Count == 0 ? null : [.. spec.Ports.Select(kv => new NamedPort(kv.Key, kv.Value))];
            foreach (ServiceInfo s in services)
            {
                if (!s.HasSlices)
                {
                    map[s.Model.Key] = PortsFor(s, named);
                }
            }
            foreach (ServiceEntryHost e in entries)
            {
                map[e.Service.Key] = EntryPorts(e.Info, spec);
            }
            _workloadsOut.Add(EntryWorkload(o, spec, $"{options.ClusterId}/networking.istio.io/WorkloadEntry/{ns}/{o.Name}", ns,
                map.ToImmutable(), PoliciesFor(ns, spec.Labels, policyScratch), useWaypointLabels: o.Labels));
        }
    }

    /// <summary>Inline endpoints, and the implicit DNS endpoint per host of a DNS entry without endpoints or selector.</summary>
    private void TranslateServiceEntryEndpoints()
    {
        var policyScratch = new List<string>();
        foreach (ServiceEntryInfo se in _serviceEntryInfos)
        {
            if (se.Hosts.IsEmpty)
            {
                continue;
            }
            KubeObject o = se.Object;
            string ns = NamespaceOf(o);
            ImmutableArray<EntrySpec> endpoints = se.Endpoints;
            if (endpoints.IsEmpty && se.WorkloadSelector is null && se.Resolution is Resolution.Dns or Resolution.DnsRoundRobin)
            {
                // Istio: with DNS resolution and nothing else, each host is its own endpoint, resolved by name.
                var implicitEndpoints = ImmutableArray.CreateBuilder<EntrySpec>(se.Hosts.Length);
                foreach (ServiceEntryHost h in se.Hosts)
                {
                    implicitEndpoints.Add(new EntrySpec(h.Service.Hostname, ImmutableDictionary<string, int>.Empty,
                        ImmutableDictionary<string, string>.Empty, "", NoLocality, 1, "default"));
                }
                endpoints = implicitEndpoints.MoveToImmutable();
            }
            var seenUids = new HashSet<string>(StringComparer.Ordinal);
            foreach (EntrySpec ep in endpoints)
            {
                var map = ImmutableDictionary.CreateBuilder<string, ImmutableDictionary<int, int>>(StringComparer.Ordinal);
                foreach (ServiceEntryHost h in se.Hosts)
                {
                    map[h.Service.Key] = EntryPorts(h.Info, ep);
                }
                string uid = $"{options.ClusterId}/networking.istio.io/ServiceEntry/{ns}/{o.Name}/{ep.Address}";
                if (!seenUids.Add(uid))
                {
                    continue; // the same address listed twice
                }
                _workloadsOut.Add(EntryWorkload(o, ep, uid, ns, map.ToImmutable(), PoliciesFor(ns, ep.Labels, policyScratch), useWaypointLabels: ep.Labels));
            }
        }
    }

    /// <summary>A ServiceEntry port for one endpoint: the endpoint's port of the same name, else the entry's target port.</summary>
    private static ImmutableDictionary<int, int> EntryPorts(ServiceInfo info, EntrySpec ep)
    {
        if (ep.Ports.Count == 0)
        {
            return info.NumericPorts ?? ImmutableDictionary<int, int>.Empty;
        }
        var b = ImmutableDictionary.CreateBuilder<int, int>();
        foreach (ServicePort p in info.Ports)
        {
            b[p.Port] = p.Name.Length > 0 && ep.Ports.TryGetValue(p.Name, out int port) ? port : p.TargetPort;
        }
        return b.ToImmutable();
    }

    private Workload EntryWorkload(KubeObject o, EntrySpec ep, string uid, string ns,
        ImmutableDictionary<string, ImmutableDictionary<int, int>> services, ImmutableArray<string> policies,
        ImmutableDictionary<string, string> useWaypointLabels)
    {
        bool isIp = ConfigValues.TryParseIp(ep.Address, out IPAddress ip, out _);
        (string canonicalName, string canonicalRevision) = Canonical(ep.Labels, o.Name);
        // A VM or external endpoint is not captured by a CNI; it speaks HBONE only when it says so (it runs a
        // ztunnel of its own): Istio's ambient label, or the older networking.istio.io/tunnel: http.
        bool hbone = ep.Labels.GetValueOrDefault(KubeLabels.DataplaneMode) == KubeLabels.DataplaneModeAmbient
            || ep.Labels.GetValueOrDefault(TunnelLabel) == "http";
        return new Workload
        {
            Uid = uid,
            Name = o.Name,
            Namespace = ns,
            ServiceAccount = ep.ServiceAccount,
            WorkloadIps = isIp ? [ip] : [],
            Hostname = isIp ? "" : ep.Address,
            Protocol = hbone ? InboundProtocol.Hbone : InboundProtocol.Tcp,
            Network = ep.Network,
            ClusterId = options.ClusterId,
            WorkloadName = o.Name,
            CanonicalName = canonicalName,
            CanonicalRevision = canonicalRevision,
            Capacity = ep.Weight == 0 ? 1 : ep.Weight,
            Locality = ep.Locality,
            Waypoint = WaypointFor(o, useWaypointLabels, ns, WaypointTraffic.Workload),
            AuthorizationPolicies = policies,
            Services = services,
            Labels = ep.Labels,
        };
    }
}
