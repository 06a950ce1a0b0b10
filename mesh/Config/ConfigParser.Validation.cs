using System.Net;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Config;

/// <summary>
/// Checks across entries, once each entry parsed on its own. What is an error and what a warning:
/// <list type="bullet">
/// <item>Duplicate workload uid, service key, service VIP or policy key: error. ztunnel keeps only the last
/// one silently; in a hand-written file a duplicate is a copy-paste slip.</item>
/// <item>The same IP on two workloads of one network: error (which one gets the traffic would be a guess).
/// ztunnel tolerates it for a Pod and a WorkloadEntry sharing an IP, which a local file has no reason to
/// do. Host-network workloads are exempt: they share the node's IP and are not looked up by address.</item>
/// <item>Two listeners of the agent on one address (the same ip:port, or a wildcard and any address on its
/// port): error. The agent never shares a port, so the second bind would fail at start-up.</item>
/// <item>A workload listing a service that is not defined, or a policy key that is not defined: warning.
/// ztunnel accepts both (it stages endpoints until the service arrives and skips unknown policies); the
/// workload still works, it is just not an endpoint of that service.</item>
/// </list>
/// </summary>
internal sealed partial class ConfigParser
{
    // Where each listener address was written ("listeners.socks5", "admin", ...), for the overlap check.
    private readonly Dictionary<string, YamlNode> _endpointNodes = new(StringComparer.Ordinal);

    private void Validate(MeshConfig config)
    {
        ValidateListeners(config);

        List<(int Index, YamlMappingNode Node)> wNodes = Present(_workloadNodes);
        List<(int Index, YamlMappingNode Node)> sNodes = Present(_serviceNodes);
        List<(int Index, YamlMappingNode Node)> pNodes = Present(_policyNodes);

        var uids = new Dictionary<string, int>(StringComparer.Ordinal);
        var ips = new Dictionary<(string, IPAddress), int>();
        for (int i = 0; i < config.Workloads.Length; i++)
        {
            Workload w = config.Workloads[i];
            (int index, YamlMappingNode node) = wNodes[i];
            string path = Index("workloads", index);
            if (!uids.TryAdd(w.Uid, index))
            {
                r.Error(ValueNode(node, "uid") ?? node, Child(path, "uid"),
                    $"duplicate workload uid '{w.Uid}' (already used by workloads[{uids[w.Uid]}]); give each workload its own uid");
            }
            if (w.NetworkMode == NetworkMode.HostNetwork)
            {
                continue;
            }
            for (int j = 0; j < w.WorkloadIps.Length; j++)
            {
                if (!ips.TryAdd((w.Network, w.WorkloadIps[j]), index))
                {
                    string net = w.Network.Length == 0 ? "the default network" : $"network '{w.Network}'";
                    (YamlNode? ipNode, string ipField) = IpNode(node, path, j);
                    r.Error(ipNode ?? node, ipField,
                        $"IP {w.WorkloadIps[j]} on {net} is already used by workloads[{ips[(w.Network, w.WorkloadIps[j])]}]");
                }
            }
        }

        var serviceKeys = new Dictionary<string, int>(StringComparer.Ordinal);
        var vips = new Dictionary<(string, IPAddress), int>();
        for (int i = 0; i < config.Services.Length; i++)
        {
            Service s = config.Services[i];
            (int index, YamlMappingNode node) = sNodes[i];
            string path = Index("services", index);
            if (!serviceKeys.TryAdd(s.Key, index))
            {
                r.Error(ValueNode(node, "hostname") ?? node, Child(path, "hostname"),
                    $"duplicate service '{s.Key}' (already defined by services[{serviceKeys[s.Key]}])");
            }
            YamlSequenceNode? vipNodes = ValueNode(node, "vips") as YamlSequenceNode;
            for (int j = 0; j < s.Vips.Length; j++)
            {
                NetworkAddress vip = s.Vips[j];
                if (!vips.TryAdd((vip.Network, vip.Address), index))
                {
                    YamlNode? vipNode = vipNodes is not null && j < vipNodes.Children.Count ? vipNodes.Children[j] : null;
                    r.Error(vipNode ?? node, Index(Child(path, "vips"), j),
                        $"VIP {vip} is already used by services[{vips[(vip.Network, vip.Address)]}]");
                }
            }
        }

        var policyKeys = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < config.Policies.Length; i++)
        {
            AuthorizationPolicy p = config.Policies[i];
            (int index, YamlMappingNode node) = pNodes[i];
            if (!policyKeys.TryAdd(p.Key, index))
            {
                r.Error(ValueNode(node, "name") ?? node, Child(Index("policies", index), "name"),
                    $"duplicate policy '{p.Key}' (already defined by policies[{policyKeys[p.Key]}])");
            }
        }

        for (int i = 0; i < config.Workloads.Length; i++)
        {
            Workload w = config.Workloads[i];
            (int index, YamlMappingNode node) = wNodes[i];
            string path = Index("workloads", index);
            foreach (string key in w.Services.Keys)
            {
                if (!serviceKeys.ContainsKey(key))
                {
                    YamlNode? svcs = ValueNode(node, "services");
                    YamlNode? at = svcs is YamlMappingNode m ? KeyNode(m, key) : svcs;
                    r.Warning(at ?? node, $"{Child(path, "services")}[\"{key}\"]",
                        $"service '{key}' is not defined under services:; this workload will not be its endpoint");
                }
            }
            for (int j = 0; j < w.AuthorizationPolicies.Length; j++)
            {
                if (!policyKeys.ContainsKey(w.AuthorizationPolicies[j]))
                {
                    YamlNode? list = ValueNode(node, "authorizationPolicies");
                    r.Warning(list ?? node, Index(Child(path, "authorizationPolicies"), j),
                        $"policy '{w.AuthorizationPolicies[j]}' is not defined under policies:; it is skipped");
                }
            }
        }
    }

    /// <summary>
    /// Two of the agent's listeners on one address: the second bind fails at start-up (the agent never shares a
    /// port, issue 13), so say it here, where --validate shows it. A wildcard address (0.0.0.0, ::) covers every
    /// address of the host on its port. In in-pod mode the proxy listeners live in the pods, not here.
    /// </summary>
    private void ValidateListeners(MeshConfig config)
    {
        ListenerConfig l = config.Listeners;
        var bound = new List<(string Field, IPEndPoint EndPoint)>(7);
        if (config.Mode == AgentMode.Shared)
        {
            bound.Add(("listeners.outbound", l.Outbound));
            bound.Add(("listeners.inbound", l.Inbound));
            bound.Add(("listeners.hbone", l.Hbone));
        }
        bound.Add(("listeners.socks5", l.Socks5));
        bound.Add(("admin", l.Admin));
        bound.Add(("metrics", l.Metrics));
        bound.Add(("readiness", l.Readiness));
        for (int j = 1; j < bound.Count; j++)
        {
            for (int i = 0; i < j; i++)
            {
                if (!Overlap(bound[i].EndPoint, bound[j].EndPoint))
                {
                    continue;
                }
                // Point at the one the user wrote (two defaults never overlap); the later one if both were written.
                var (here, there) = _endpointNodes.ContainsKey(bound[j].Field) ? (bound[j], bound[i]) : (bound[i], bound[j]);
                r.Error(_endpointNodes.GetValueOrDefault(here.Field), here.Field,
                    $"{here.EndPoint} overlaps {there.Field} ({there.EndPoint}): two listeners cannot share an address " +
                    "(0.0.0.0 and :: cover every address of the host on their port)");
                break;
            }
        }
    }

    private static bool Overlap(IPEndPoint a, IPEndPoint b)
    {
        if (a.Port == 0 || a.Port != b.Port)
        {
            return false; // port 0: the kernel picks a free port for each
        }
        if (a.Address.Equals(b.Address))
        {
            return true;
        }
        // A dual-mode IPv6 wildcard covers IPv4 too; an IPv4 wildcard covers every IPv4 address.
        if (a.Address.Equals(IPAddress.IPv6Any) || b.Address.Equals(IPAddress.IPv6Any))
        {
            return true;
        }
        return a.AddressFamily == b.AddressFamily && (a.Address.Equals(IPAddress.Any) || b.Address.Equals(IPAddress.Any));
    }

    private static List<(int, YamlMappingNode)> Present(List<YamlMappingNode?> nodes)
    {
        var list = new List<(int, YamlMappingNode)>(nodes.Count);
        for (int i = 0; i < nodes.Count; i++)
        {
            if (nodes[i] is { } n)
            {
                list.Add((i, n));
            }
        }
        return list;
    }

    private static YamlNode? ValueNode(YamlMappingNode map, string key)
    {
        foreach (KeyValuePair<YamlNode, YamlNode> kv in map.Children)
        {
            if (kv.Key is YamlScalarNode k && k.Value == key)
            {
                return kv.Value;
            }
        }
        return null;
    }

    private static YamlNode? KeyNode(YamlMappingNode map, string key)
    {
        foreach (KeyValuePair<YamlNode, YamlNode> kv in map.Children)
        {
            if (kv.Key is YamlScalarNode k && k.Value == key)
            {
                return kv.Key;
            }
        }
        return null;
    }

    /// <summary>The YAML node of the j-th parsed IP (workloadIps entries first, then the legacy workloadIp).</summary>
    private static (YamlNode?, string) IpNode(YamlMappingNode map, string path, int j)
    {
        if (ValueNode(map, "workloadIps") is YamlSequenceNode seq)
        {
            if (j < seq.Children.Count)
            {
                return (seq.Children[j], Index(Child(path, "workloadIps"), j));
            }
            j -= seq.Children.Count;
        }
        return (ValueNode(map, "workloadIp"), Child(path, "workloadIp"));
    }
}
