using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes;

internal sealed partial class Translation
{
    private static readonly (string, WaypointTraffic)[] WaypointForValues =
        [("service", WaypointTraffic.Service), ("workload", WaypointTraffic.Workload), ("all", WaypointTraffic.All), ("none", WaypointTraffic.None)];

    private static readonly (string, WaypointNamespaces)[] FromValues =
        [("Same", WaypointNamespaces.Same), ("All", WaypointNamespaces.All), ("Selector", WaypointNamespaces.Selector)];

    private readonly Dictionary<(string Namespace, string Name), Waypoint> _waypoints = [];
    private readonly Dictionary<Waypoint, GatewayAddress> _waypointAddresses = [];
    private readonly HashSet<(string, string, string)> _warnedWaypoints = [];

    private readonly Dictionary<string, ImmutableDictionary<string, string>> _gatewayClassLabels = new(StringComparer.Ordinal);

    private void TranslateGateways()
    {
        foreach (KubeObject o in _gatewayClasses)
        {
            _gatewayClassLabels[o.Name] = o.Labels;
        }
        foreach (KubeObject o in _gateways)
        {
            if (Parse(o, ParseGateway) is { } waypoint)
            {
                _waypoints[(waypoint.Namespace, waypoint.Name)] = waypoint;
                _objectsOut.Add(waypoint);
            }
        }
    }

    /// <summary>A Gateway API Gateway; only <c>gatewayClassName: istio-waypoint</c> ones are waypoints, others are ignored (null, no error).</summary>
    private Waypoint? ParseGateway(KubeObject o, YamlConfigReader r)
    {
        YamlMappingNode? spec = KubeYaml.Map(r, o.Body, "spec", "");
        string? className = KubeYaml.Str(r, spec, "gatewayClassName", "spec");
        if (className != KubeLabels.WaypointGatewayClass)
        {
            if (className is null)
            {
                r.Error(spec ?? o.Body, "spec.gatewayClassName", "required (a waypoint has gatewayClassName: istio-waypoint)");
            }
            else
            {
                _ignored.Add($"Gateway.{GatewayApi} (gatewayClassName {className})");
            }
            return null;
        }
        string ns = NamespaceOf(o);
        // istio.io/waypoint-for: the Gateway's label, else its GatewayClass's, else "service".
        WaypointTraffic traffic = WaypointTraffic.Service;
        if (o.Labels.TryGetValue(KubeLabels.WaypointFor, out string? forText))
        {
            // The label's own node gives the error a line; labels handed over without one still get checked.
            YamlNode labelNode = LabelNode(o, KubeLabels.WaypointFor) ?? new YamlScalarNode(forText);
            traffic = r.Enum(labelNode, $"metadata.labels[\"{KubeLabels.WaypointFor}\"]", WaypointForValues) ?? traffic;
        }
        else if (_gatewayClassLabels.GetValueOrDefault(className)?.GetValueOrDefault(KubeLabels.WaypointFor) is { } classFor)
        {
            traffic = Array.Find(WaypointForValues, v => v.Item1 == classFor) is { Item1: not null } found ? found.Item2 : traffic;
        }

        var listeners = ImmutableArray.CreateBuilder<WaypointListener>();
        WaypointNamespaces allowed = WaypointNamespaces.Same;
        ImmutableDictionary<string, string> allowedSelector = ImmutableDictionary<string, string>.Empty;
        YamlSequenceNode? listenerSeq = KubeYaml.Seq(r, spec, "listeners", "spec");
        for (int i = 0; listenerSeq is not null && i < listenerSeq.Children.Count; i++)
        {
            string p = Index("spec.listeners", i);
            YamlMappingNode? l = r.Mapping(listenerSeq.Children[i], p);
            if (l is null)
            {
                continue;
            }
            string name = KubeYaml.Str(r, l, "name", p) ?? "";
            int? port = KubeYaml.Port(r, l, "port", p);
            string protocol = KubeYaml.Str(r, l, "protocol", p) ?? "";
            if (name.Length == 0)
            {
                r.Error(l, Child(p, "name"), "required: every listener needs a name");
            }
            if (port is null && KubeYaml.Get(l, "port") is null)
            {
                r.Error(l, Child(p, "port"), "required: every listener needs a port (a waypoint's is 15008)");
            }
            listeners.Add(new WaypointListener(name, port ?? 0, protocol));
            if (protocol == "HBONE" && port == 15008)
            {
                // Istio decides who may use the waypoint from this listener alone.
                (allowed, allowedSelector) = AllowedRoutes(r, l, p);
            }
        }

        var addresses = ImmutableArray.CreateBuilder<IPAddress>();
        YamlMappingNode? status = KubeYaml.Get(o.Body, "status") as YamlMappingNode;
        CollectAddresses(r, spec, "spec", addresses);
        CollectAddresses(r, status, "status", addresses);

        return new Waypoint
        {
            Namespace = ns,
            Name = o.Name,
            GatewayClassName = className,
            For = traffic,
            Listeners = listeners.ToImmutable(),
            AllowedNamespaces = allowed,
            NamespaceSelector = allowedSelector,
            Identity = $"spiffe://{options.TrustDomain}/ns/{ns}/sa/{o.Name}",
            // Istio prefers the hostname its controller writes into status; it is the Service's name.
            ServiceHostname = StatusHostname(status) ?? ServiceHostname(o.Name, ns),
            Addresses = addresses.ToImmutable(),
        };
    }

    private static (WaypointNamespaces, ImmutableDictionary<string, string>) AllowedRoutes(YamlConfigReader r, YamlMappingNode listener, string path)
    {
        YamlMappingNode? namespaces = KubeYaml.Get(KubeYaml.Get(listener, "allowedRoutes") as YamlMappingNode, "namespaces") as YamlMappingNode;
        string nsPath = Child(path, "allowedRoutes.namespaces");
        if (KubeYaml.Get(namespaces, "from") is not { } fromNode)
        {
            return (WaypointNamespaces.Same, ImmutableDictionary<string, string>.Empty);
        }
        WaypointNamespaces from = r.Enum(fromNode, Child(nsPath, "from"), FromValues) ?? WaypointNamespaces.Same;
        if (from != WaypointNamespaces.Selector)
        {
            return (from, ImmutableDictionary<string, string>.Empty);
        }
        YamlMappingNode? selector = KubeYaml.Get(namespaces, "selector") as YamlMappingNode;
        if (KubeYaml.Get(selector, "matchExpressions") is { } expressions)
        {
            // Valid Gateway API, but not evaluated here: fall back to the narrowest reading rather than guess.
            r.Warning(expressions, Child(nsPath, "selector.matchExpressions"),
                "namespace selectors with matchExpressions are not supported; only the waypoint's own namespace may use it");
            return (WaypointNamespaces.Same, ImmutableDictionary<string, string>.Empty);
        }
        ImmutableDictionary<string, string> labels = KubeYaml.Get(selector, "matchLabels") is { } ml
            ? KubeYaml.StringMap(r, ml, Child(nsPath, "selector.matchLabels"))
            : ImmutableDictionary<string, string>.Empty;
        return (WaypointNamespaces.Selector, labels);
    }

    private static string? StatusHostname(YamlMappingNode? status)
    {
        if (KubeYaml.Get(status, "addresses") is not YamlSequenceNode seq)
        {
            return null;
        }
        foreach (YamlNode a in seq.Children)
        {
            if (KubeYaml.Text(a as YamlMappingNode, "type") == "Hostname" && KubeYaml.Text(a as YamlMappingNode, "value") is { Length: > 0 } host)
            {
                return host;
            }
        }
        return null;
    }

    /// <summary>The YAML node of a label's value, for errors with a line (null when the labels came from elsewhere).</summary>
    private static YamlNode? LabelNode(KubeObject o, string label) =>
        KubeYaml.Get(KubeYaml.Get(KubeYaml.Get(o.Body, "metadata") as YamlMappingNode, "labels") as YamlMappingNode, label);

    /// <summary>IP addresses of a Gateway (spec.addresses or status.addresses of type IPAddress, the default type).</summary>
    private static void CollectAddresses(YamlConfigReader r, YamlMappingNode? parent, string path, ImmutableArray<IPAddress>.Builder into)
    {
        YamlSequenceNode? seq = KubeYaml.Seq(r, parent, "addresses", path);
        for (int i = 0; seq is not null && i < seq.Children.Count; i++)
        {
            if (seq.Children[i] is not YamlMappingNode a)
            {
                continue;
            }
            string type = KubeYaml.Text(a, "type") ?? "IPAddress";
            if (type.EndsWith("IPAddress", StringComparison.Ordinal) && KubeYaml.Get(a, "value") is { } v
                && KubeYaml.Ip(r, v, Child(Index(Child(path, "addresses"), i), "value")) is { } ip && !into.Contains(ip))
            {
                into.Add(ip);
            }
        }
    }

    private string ServiceHostname(string name, string ns) => $"{name}.{ns}.svc.{options.DomainSuffix}";

    /// <summary>
    /// The waypoint an object uses, by Istio's rules: the object's own <c>istio.io/use-waypoint</c> label wins over
    /// its namespace's (<c>none</c> on the object opts out); <c>istio.io/use-waypoint-namespace</c> next to the
    /// label names the waypoint's namespace; the waypoint must take this kind of traffic
    /// (<c>istio.io/waypoint-for</c>) and allow the object's namespace. A reference to a waypoint that does not
    /// exist is a warning (once per reference) and no waypoint: traffic goes direct, as in Istio.
    /// </summary>
    private GatewayAddress? WaypointFor(KubeObject o, ImmutableDictionary<string, string> labels, string ns, WaypointTraffic traffic)
    {
        ImmutableDictionary<string, string> nsLabels = NamespaceLabels(ns);
        string? name;
        string waypointNs;
        if (labels.TryGetValue(KubeLabels.UseWaypoint, out name))
        {
            waypointNs = labels.GetValueOrDefault(KubeLabels.UseWaypointNamespace) ?? ns;
        }
        else if (nsLabels.TryGetValue(KubeLabels.UseWaypoint, out name))
        {
            waypointNs = nsLabels.GetValueOrDefault(KubeLabels.UseWaypointNamespace) ?? ns;
        }
        else
        {
            return null;
        }
        if (name == "none" || name.Length == 0)
        {
            return null;
        }
        if (!_waypoints.TryGetValue((waypointNs, name), out Waypoint? waypoint))
        {
            if (_warnedWaypoints.Add((ns, waypointNs, name)))
            {
                Warn(o, null, $"metadata.labels[\"{KubeLabels.UseWaypoint}\"]",
                    $"uses waypoint {waypointNs}/{name}, but there is no Gateway {waypointNs}/{name} with gatewayClassName istio-waypoint; traffic goes direct");
            }
            return null;
        }
        if (!waypoint.IsFor(traffic))
        {
            return null; // e.g. a namespace-wide label with a service waypoint: pods in it do not use it
        }
        if (!waypoint.AllowsNamespace(ns, nsLabels))
        {
            if (_warnedWaypoints.Add((ns, waypointNs, name)))
            {
                Warn(o, null, $"metadata.labels[\"{KubeLabels.UseWaypoint}\"]",
                    $"uses waypoint {waypointNs}/{name}, whose listeners do not allow namespace {ns} (allowedRoutes.namespaces); traffic goes direct");
            }
            return null;
        }
        if (!_waypointAddresses.TryGetValue(waypoint, out GatewayAddress? address))
        {
            _waypointAddresses[waypoint] = address = new GatewayAddress(waypoint.ServiceHostname, waypoint.Namespace, null, "", 15008);
        }
        return address;
    }

    /// <summary>The pods and the Service of a waypoint never use a waypoint themselves.</summary>
    private static bool IsWaypointInfrastructure(ImmutableDictionary<string, string> labels) =>
        labels.ContainsKey(KubeLabels.GatewayName)
        || labels.GetValueOrDefault(KubeLabels.GatewayManaged) == KubeLabels.GatewayManagedMesh;
}
