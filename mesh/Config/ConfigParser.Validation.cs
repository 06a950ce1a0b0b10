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
/// <item>A workload listing a service that is not defined, or a policy key that is not defined: warning.
/// ztunnel accepts both (it stages endpoints until the service arrives and skips unknown policies); the
/// workload still works, it is just not an endpoint of that service.</item>
/// </list>
/// </summary>
internal sealed partial class ConfigParser
{
    private void Validate(MeshConfig config)
    {
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
