using System.Collections.Immutable;
using System.Net;
using System.Runtime.InteropServices;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes;

internal sealed partial class Translation
{
    private static readonly ImmutableArray<LoadBalancingScope> PreferClose =
        [LoadBalancingScope.Network, LoadBalancingScope.Region, LoadBalancingScope.Zone, LoadBalancingScope.Subzone];

    /// <summary>A service port: the target is a number, or a container port name resolved per workload.</summary>
    /// <param name="Protocol">What the port declares (appProtocol, else the name), lower case; empty: nothing.</param>
    private readonly record struct ServicePort(string Name, int Port, int TargetPort, string? TargetName, string Protocol = "");

    /// <summary>A container port with a name (what a named targetPort refers to).</summary>
    private readonly record struct NamedPort(string Name, int Port)
    {
        public static int? Find(ReadOnlySpan<NamedPort> ports, string name)
        {
            foreach (NamedPort p in ports)
            {
                if (p.Name == name)
                {
                    return p.Port;
                }
            }
            return null;
        }
    }

    /// <summary>A translated Service (or ServiceEntry host) and what workloads need to join it.</summary>
    private sealed class ServiceInfo
    {
        public required Service Model { get; init; }
        public required ServicePort[] Ports { get; init; }
        public required ImmutableDictionary<string, string> Selector { get; init; }
        /// <summary>Service port -> target port for a workload when no port is named (shared by every endpoint).</summary>
        public required ImmutableDictionary<int, int>? NumericPorts { get; init; }
        /// <summary>EndpointSlices exist for it: they, not the selector, say which workloads are its endpoints.</summary>
        public bool HasSlices { get; set; }
        /// <summary>Port maps already made for workloads with named ports (kept with the parsed Service across runs).</summary>
        public NamedPortMaps NamedPortMaps { get; init; } = new();
    }

    /// <summary>
    /// Port maps made for workloads with named target ports, by the target ports they resolved to: the replicas of a
    /// Deployment share one. Kept with the parsed Service, so it lives across runs (a lock: runs may overlap).
    /// </summary>
    private sealed class NamedPortMaps
    {
        private readonly List<(int[] Targets, ImmutableDictionary<int, int> Map)> _maps = [];
        private readonly Lock _lock = new();

        public ImmutableDictionary<int, int> Get(ReadOnlySpan<int> targets, ServicePort[] ports)
        {
            lock (_lock)
            {
                foreach ((int[] known, ImmutableDictionary<int, int> map) in _maps)
                {
                    if (targets.SequenceEqual(known))
                    {
                        return map;
                    }
                }
                var b = ImmutableDictionary.CreateBuilder<int, int>();
                for (int i = 0; i < ports.Length; i++)
                {
                    if (targets[i] >= 0)
                    {
                        b[ports[i].Port] = targets[i];
                    }
                }
                ImmutableDictionary<int, int> made = b.ToImmutable();
                _maps.Add((targets.ToArray(), made));
                return made;
            }
        }
    }

    /// <summary>What a Service says on its own (parsed once per object); the network and waypoint come from its namespace.</summary>
    private sealed record ServiceSpec(ImmutableArray<IPAddress> Vips, ServicePort[] Ports, ImmutableDictionary<int, int> ModelPorts,
        ImmutableDictionary<int, int>? NumericPorts, ImmutableDictionary<string, string> Selector, LoadBalancing? LoadBalancing,
        NamedPortMaps NamedPortMaps);

    private readonly Dictionary<(string Namespace, string Name), ServiceInfo> _serviceByName = [];
    /// <summary>Every service key ("ns/hostname") so far: a ServiceEntry host may not take a Service's.</summary>
    private readonly HashSet<string> _serviceKeys = new(StringComparer.Ordinal);
    /// <summary>Kubernetes Services by selector: they select pods and WorkloadEntries of their namespace.</summary>
    private readonly SelectorIndex<ServiceInfo> _serviceSelectors = new();

    private void TranslateServices()
    {
        foreach (KubeObject o in _services)
        {
            if (ParseOnce(o, ParseService) is not { } spec)
            {
                continue;
            }
            ServiceInfo info = ServiceOf(o, spec);
            if (!_serviceByName.TryAdd((info.Model.Namespace, info.Model.Name), info))
            {
                Error(o, null, "", $"{Describe(o)} is defined twice; the second is ignored");
                continue;
            }
            _serviceKeys.Add(info.Model.Key);
            _servicesOut.Add(info.Model);
            _serviceSelectors.Add(info.Model.Namespace, info.Selector, info);
        }
        SynthesizeWaypointServices();
    }

    private static ServiceSpec? ParseService(KubeObject o, YamlConfigReader r)
    {
        YamlMappingNode? spec = KubeYaml.Map(r, o.Body, "spec", "");
        YamlMappingNode? status = KubeYaml.Map(r, o.Body, "status", "");

        var vips = new List<IPAddress>(2);
        YamlSequenceNode? clusterIps = KubeYaml.Seq(r, spec, "clusterIPs", "spec");
        if (clusterIps is not null)
        {
            for (int i = 0; i < clusterIps.Children.Count; i++)
            {
                AddVip(r, clusterIps.Children[i], new FieldPath("spec.clusterIPs", i), vips);
            }
        }
        else if (KubeYaml.Get(spec, "clusterIP") is { } clusterIp)
        {
            AddVip(r, clusterIp, "spec.clusterIP", vips);
        }
        if (KubeYaml.Text(spec, "type") == "LoadBalancer")
        {
            // A load balancer's ingress IPs reach the same service (Istio adds them as VIPs too).
            YamlSequenceNode? ingress = KubeYaml.Seq(r, KubeYaml.Map(r, status, "loadBalancer", "status"), "ingress", "status.loadBalancer");
            for (int i = 0; ingress is not null && i < ingress.Children.Count; i++)
            {
                if (KubeYaml.Get(ingress.Children[i] as YamlMappingNode, "ip") is { } ipNode)
                {
                    AddVip(r, ipNode, new FieldPath("status.loadBalancer.ingress", i, "ip"), vips);
                }
            }
        }

        ServicePort[] ports = ParseServicePorts(r, spec);
        ImmutableDictionary<string, string> selector = Selector(r, spec, "selector", "spec", bare: true) ?? ImmutableDictionary<string, string>.Empty;

        LoadBalancing? lb = null;
        string? distribution = KubeYaml.Text(spec, "trafficDistribution") ?? o.Annotations.GetValueOrDefault(KubeLabels.TrafficDistribution);
        if (distribution is "PreferClose" or "PreferSameZone" || o.Labels.GetValueOrDefault(KubeLabels.GatewayManaged) == KubeLabels.GatewayManagedMesh)
        {
            // Istio: prefer endpoints close to the client, spilling over to farther ones (waypoints always do).
            lb = new LoadBalancing(PreferClose, LoadBalancingMode.Failover);
        }
        if (KubeYaml.Text(spec, "internalTrafficPolicy") == "Local")
        {
            lb = new LoadBalancing([LoadBalancingScope.Node], LoadBalancingMode.Strict);
        }
        if (KubeYaml.Text(spec, "publishNotReadyAddresses") == "true")
        {
            lb = (lb ?? new LoadBalancing([], LoadBalancingMode.Unspecified)) with { HealthPolicy = LoadBalancingHealthPolicy.AllowAll };
        }
        return new ServiceSpec([.. vips], ports, ModelPorts(ports), NumericPorts(ports), selector, lb, new NamedPortMaps());
    }

    /// <summary>The Service of this run: its namespace decides the VIPs' network and (with its own labels) the waypoint.</summary>
    private ServiceInfo ServiceOf(KubeObject o, ServiceSpec spec)
    {
        string ns = NamespaceOf(o);
        string network = o.Labels.GetValueOrDefault(KubeLabels.Network) ?? NamespaceLabels(ns).GetValueOrDefault(KubeLabels.Network) ?? "";
        var vips = new NetworkAddress[spec.Vips.Length];
        for (int i = 0; i < vips.Length; i++)
        {
            vips[i] = new NetworkAddress(network, spec.Vips[i]);
        }
        GatewayAddress? waypoint = IsWaypointInfrastructure(o.Labels) || _waypoints.ContainsKey((ns, o.Name))
            ? null
            : WaypointFor(o, o.Labels, ns, WaypointTraffic.Service);
        var model = new Service
        {
            Name = o.Name,
            Namespace = ns,
            Hostname = ServiceHostname(o.Name, ns),
            Vips = ImmutableCollectionsMarshal.AsImmutableArray(vips),
            Ports = spec.ModelPorts,
            PortProtocols = PortProtocols(spec.Ports),
            Waypoint = waypoint,
            LoadBalancing = spec.LoadBalancing,
        };
        return new ServiceInfo { Model = model, Ports = spec.Ports, Selector = spec.Selector, NumericPorts = spec.NumericPorts, NamedPortMaps = spec.NamedPortMaps };
    }

    private static void AddVip(YamlConfigReader r, YamlNode node, FieldPath path, List<IPAddress> into)
    {
        if (node is YamlScalarNode { Value: "None" or "" })
        {
            return; // headless: no VIP, clients reach the pods directly
        }
        if (KubeYaml.Ip(r, node, path) is { } ip && !into.Contains(ip))
        {
            into.Add(ip);
        }
    }

    private static bool HasVip(ImmutableArray<NetworkAddress>.Builder vips, IPAddress ip)
    {
        foreach (NetworkAddress v in vips)
        {
            if (v.Address.Equals(ip))
            {
                return true;
            }
        }
        return false;
    }

    private static ServicePort[] ParseServicePorts(YamlConfigReader r, YamlMappingNode? spec)
    {
        YamlSequenceNode? seq = KubeYaml.Seq(r, spec, "ports", "spec");
        if (seq is null || seq.Children.Count == 0)
        {
            return [];
        }
        var ports = new List<ServicePort>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            var p = new FieldPath("spec.ports", i);
            YamlMappingNode? map = KubeYaml.AsMap(r, seq.Children[i], p);
            if (map is null)
            {
                continue;
            }
            int? port = KubeYaml.Port(r, map, "port", p);
            if (port is null)
            {
                if (KubeYaml.Get(map, "port") is null)
                {
                    r.Error(map, p.Child("port"), "required: the port the service listens on");
                }
                continue;
            }
            string name = KubeYaml.Str(r, map, "name", p) ?? "";
            // targetPort defaults to port (the API server fills it in; a hand-written manifest may leave it out).
            (int Number, string? Name) target = (port.Value, null);
            if (KubeYaml.IntOrString(r, map, "targetPort", p) is { } parsed)
            {
                target = parsed;
            }
            if (ports.Exists(x => x.Port == port.Value))
            {
                continue; // the same port for TCP and UDP (DNS): ztunnel carries TCP, one entry is enough
            }
            string? appProtocol = KubeYaml.Str(r, map, "appProtocol", p);
            ports.Add(new ServicePort(name, port.Value, target.Number, target.Name, DeclaredProtocol(appProtocol, name)));
        }
        return [.. ports];
    }

    /// <summary>Istio's order: <c>appProtocol</c> first, then the port name (its <c>protocol[-suffix]</c> prefix is read later).</summary>
    internal static string DeclaredProtocol(string? appProtocol, string? name) =>
        (!string.IsNullOrWhiteSpace(appProtocol) ? appProtocol.Trim() : name ?? "").ToLowerInvariant();

    /// <summary>Service port -> declared protocol, for the ports that declare one.</summary>
    private static ImmutableDictionary<int, string> PortProtocols(ServicePort[] ports)
    {
        var b = ImmutableDictionary.CreateBuilder<int, string>();
        foreach (ServicePort p in ports)
        {
            if (p.Protocol.Length > 0)
            {
                b[p.Port] = p.Protocol;
            }
        }
        return b.ToImmutable();
    }

    /// <summary>The Service's own port map: a named target port is 0 there (each workload has its own number).</summary>
    private static ImmutableDictionary<int, int> ModelPorts(ServicePort[] ports)
    {
        if (ports.Length == 0)
        {
            return ImmutableDictionary<int, int>.Empty;
        }
        var b = ImmutableDictionary.CreateBuilder<int, int>();
        foreach (ServicePort p in ports)
        {
            b[p.Port] = p.TargetName is null ? p.TargetPort : 0;
        }
        return b.ToImmutable();
    }

    private static ImmutableDictionary<int, int>? NumericPorts(ServicePort[] ports)
    {
        foreach (ServicePort p in ports)
        {
            if (p.TargetName is not null)
            {
                return null;
            }
        }
        return ModelPorts(ports);
    }

    /// <summary>
    /// A workload's port map for a service: numeric targets as they are; a named target resolved against the
    /// workload's container ports, and left out when the workload has no port of that name (Istio does the same:
    /// that workload does not serve that service port). Workloads that resolve to the same ports share one map.
    /// </summary>
    private static ImmutableDictionary<int, int> PortsFor(ServiceInfo svc, NamedPort[]? namedPorts)
    {
        if (svc.NumericPorts is { } shared)
        {
            return shared;
        }
        Span<int> targets = svc.Ports.Length <= 32 ? stackalloc int[svc.Ports.Length] : new int[svc.Ports.Length];
        for (int i = 0; i < svc.Ports.Length; i++)
        {
            ServicePort p = svc.Ports[i];
            targets[i] = p.TargetName is null ? p.TargetPort : NamedPort.Find(namedPorts, p.TargetName) ?? -1;
        }
        return svc.NamedPortMaps.Get(targets, svc.Ports);
    }

    /// <summary>
    /// ztunnel reaches a waypoint through its Service's endpoints. Istio's deployment controller creates that
    /// Service next to the Gateway; a manifest set often leaves it out. When it is missing, one is made here with
    /// the Service Istio would create (port 15008 for HBONE, selecting the Gateway's pods); its VIP is the
    /// Gateway's address when it has one.
    /// </summary>
    private void SynthesizeWaypointServices()
    {
        foreach (Waypoint w in _waypoints.Values)
        {
            if (_serviceByName.ContainsKey((w.Namespace, w.Name)))
            {
                continue;
            }
            var vips = ImmutableArray.CreateBuilder<NetworkAddress>(w.Addresses.Length);
            foreach (IPAddress ip in w.Addresses)
            {
                vips.Add(new NetworkAddress("", ip));
            }
            ServicePort[] ports = [new ServicePort("mesh", 15008, 15008, null)];
            var model = new Service
            {
                Name = w.Name,
                Namespace = w.Namespace,
                Hostname = w.ServiceHostname,
                Vips = vips.MoveToImmutable(),
                Ports = ModelPorts(ports),
                LoadBalancing = new LoadBalancing(PreferClose, LoadBalancingMode.Failover),
            };
            var info = new ServiceInfo
            {
                Model = model,
                Ports = ports,
                Selector = ImmutableDictionary<string, string>.Empty.Add(KubeLabels.GatewayName, w.Name),
                NumericPorts = ModelPorts(ports),
            };
            _serviceByName[(w.Namespace, w.Name)] = info;
            _serviceKeys.Add(model.Key);
            _servicesOut.Add(model);
            _serviceSelectors.Add(w.Namespace, info.Selector, info);
        }
    }
}
