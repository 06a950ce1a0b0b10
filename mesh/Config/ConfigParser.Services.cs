using System.Collections.Immutable;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Config;

internal sealed partial class ConfigParser
{
    // Fields of ztunnel's Service (src/state/service.rs). ztunnel spells the load-balancing block
    // `loadBalancer`; workload.proto calls it `loadBalancing`: both are accepted.
    private static readonly string[] ServiceKeys =
    [
        "name", "namespace", "hostname", "vips", "ports", "subjectAltNames", "waypoint", "loadBalancer",
        "loadBalancing",
        // Istio fields this agent does not use: accepted and ignored (endpoints come from the workloads).
        "endpoints", "ipFamilies", "canonical",
    ];

    private static readonly string[] LoadBalancerKeys = ["routingPreferences", "routingPreference", "mode", "healthPolicy"];

    private static readonly (string, LoadBalancingMode)[] LbModes =
    [
        ("Standard", LoadBalancingMode.Unspecified), ("Strict", LoadBalancingMode.Strict),
        ("Failover", LoadBalancingMode.Failover), ("Passthrough", LoadBalancingMode.Passthrough),
        ("UnspecifiedMode", LoadBalancingMode.Unspecified),
    ];

    private static readonly (string, LoadBalancingScope)[] LbScopes =
    [
        ("Region", LoadBalancingScope.Region), ("Zone", LoadBalancingScope.Zone), ("Subzone", LoadBalancingScope.Subzone),
        ("Node", LoadBalancingScope.Node), ("Cluster", LoadBalancingScope.Cluster), ("Network", LoadBalancingScope.Network),
    ];

    private static readonly (string, LoadBalancingHealthPolicy)[] LbHealth =
        [("OnlyHealthy", LoadBalancingHealthPolicy.OnlyHealthy), ("AllowAll", LoadBalancingHealthPolicy.AllowAll)];

    private readonly List<YamlMappingNode?> _serviceNodes = [];

    private ImmutableArray<Service> ParseServices(YamlSequenceNode seq, string path) =>
        ParseEntries(seq, path, "service", _serviceNodes, ParseService);

    private Service? ParseService(YamlMappingNode map, string path)
    {
        string? name = null, ns = null, hostname = null;
        var vips = ImmutableArray.CreateBuilder<NetworkAddress>();
        var ports = ImmutableDictionary<int, int>.Empty;
        ImmutableArray<string> sans = [];
        GatewayAddress? waypoint = null;
        LoadBalancing? lb = null;
        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            string f = Child(path, key);
            switch (key)
            {
                case "name":
                    name = r.String(value, f);
                    break;
                case "namespace":
                    ns = r.String(value, f);
                    break;
                case "hostname":
                    hostname = r.String(value, f);
                    break;
                case "vips":
                    YamlSequenceNode? seq = r.Sequence(value, f);
                    for (int i = 0; seq is not null && i < seq.Children.Count; i++)
                    {
                        string? text = r.String(seq.Children[i], Index(f, i));
                        if (text is null)
                        {
                            continue;
                        }
                        if (ConfigValues.TryParseNetworkAddress(text, out NetworkAddress vip, out string error))
                        {
                            vips.Add(vip);
                        }
                        else
                        {
                            r.Error(seq.Children[i], Index(f, i), error);
                        }
                    }
                    break;
                case "ports":
                    ports = PortMap(value, f);
                    break;
                case "subjectAltNames":
                    sans = Strings(value, f);
                    break;
                case "waypoint":
                    waypoint = IsNull(value) ? null : Gateway(value, f);
                    break;
                case "loadBalancer":
                case "loadBalancing":
                    lb = IsNull(value) ? null : ParseLoadBalancer(value, f);
                    break;
                case "endpoints":
                case "ipFamilies":
                case "canonical":
                    break;
                default:
                    r.UnknownKey(k, path, ServiceKeys, strict: false);
                    break;
            }
        }
        bool ok = true;
        foreach ((string field, string? v, string what) in (ReadOnlySpan<(string, string?, string)>)
            [("name", name, "the service's name"), ("namespace", ns, "the service's namespace"),
             ("hostname", hostname, "e.g. reviews.default.svc.cluster.local")])
        {
            if (string.IsNullOrEmpty(v))
            {
                r.Error(map, Child(path, field), $"required: {what}");
                ok = false;
            }
        }
        if (!ok)
        {
            return null;
        }
        return new Service
        {
            Name = name!,
            Namespace = ns!,
            Hostname = hostname!,
            Vips = vips.ToImmutable(),
            Ports = ports,
            SubjectAltNames = sans,
            Waypoint = waypoint,
            LoadBalancing = lb,
        };
    }

    private LoadBalancing? ParseLoadBalancer(YamlNode node, string path)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return null;
        }
        var prefs = ImmutableArray.CreateBuilder<LoadBalancingScope>();
        LoadBalancingMode mode = LoadBalancingMode.Unspecified;
        LoadBalancingHealthPolicy health = LoadBalancingHealthPolicy.OnlyHealthy;
        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            string f = Child(path, key);
            switch (key)
            {
                case "routingPreferences":
                case "routingPreference":
                    YamlSequenceNode? seq = r.Sequence(value, f);
                    for (int i = 0; seq is not null && i < seq.Children.Count; i++)
                    {
                        if (r.Enum(seq.Children[i], Index(f, i), LbScopes) is LoadBalancingScope scope)
                        {
                            prefs.Add(scope);
                        }
                    }
                    break;
                case "mode":
                    mode = r.Enum(value, f, LbModes) ?? mode;
                    break;
                case "healthPolicy":
                    health = r.Enum(value, f, LbHealth) ?? health;
                    break;
                default:
                    r.UnknownKey(k, path, LoadBalancerKeys, strict: false);
                    break;
            }
        }
        return new LoadBalancing(prefs.ToImmutable(), mode) { HealthPolicy = health };
    }
}
