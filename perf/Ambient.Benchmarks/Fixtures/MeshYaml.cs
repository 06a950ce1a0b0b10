using System.Text;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;

namespace Ambient.Benchmarks.Fixtures;

/// <summary>
/// Writes a <see cref="MeshConfig"/> as Istio ztunnel local-config YAML (the fields the fixtures use), so the
/// parser benchmark reads the same shape of file an operator would hand the agent.
/// </summary>
public static class MeshYaml
{
    public static string Write(MeshConfig config)
    {
        var sb = new StringBuilder(1024 * 1024);
        sb.Append("trustDomain: ").Append(config.TrustDomain).Append('\n');
        sb.Append("workloads:\n");
        foreach (Workload w in config.Workloads)
        {
            sb.Append("- uid: ").Append(w.Uid).Append('\n');
            Field(sb, "name", w.Name);
            Field(sb, "namespace", w.Namespace);
            Field(sb, "serviceAccount", w.ServiceAccount);
            sb.Append("  workloadIps: [");
            for (int i = 0; i < w.WorkloadIps.Length; i++)
            {
                sb.Append(i == 0 ? "\"" : ", \"").Append(w.WorkloadIps[i]).Append('"');
            }
            sb.Append("]\n");
            Field(sb, "protocol", w.Protocol == InboundProtocol.Hbone ? "HBONE" : "TCP");
            Field(sb, "node", w.Node);
            Field(sb, "clusterId", w.ClusterId);
            Field(sb, "workloadName", w.WorkloadName);
            Field(sb, "workloadType", w.WorkloadType);
            Field(sb, "canonicalName", w.CanonicalName);
            Field(sb, "canonicalRevision", w.CanonicalRevision);
            if (w.Locality.Region.Length > 0)
            {
                sb.Append("  locality:\n    region: ").Append(w.Locality.Region)
                  .Append("\n    zone: ").Append(w.Locality.Zone).Append('\n');
            }
            if (!w.AuthorizationPolicies.IsEmpty)
            {
                sb.Append("  authorizationPolicies: [\"").AppendJoin("\", \"", w.AuthorizationPolicies).Append("\"]\n");
            }
            if (!w.Services.IsEmpty)
            {
                sb.Append("  services:\n");
                foreach (var (key, ports) in w.Services)
                {
                    sb.Append("    \"").Append(key).Append("\":\n");
                    foreach (var (port, target) in ports)
                    {
                        sb.Append("      ").Append(port).Append(": ").Append(target).Append('\n');
                    }
                }
            }
        }
        sb.Append("services:\n");
        foreach (Service s in config.Services)
        {
            sb.Append("- name: ").Append(s.Name).Append('\n');
            Field(sb, "namespace", s.Namespace);
            Field(sb, "hostname", s.Hostname);
            sb.Append("  vips: [");
            for (int i = 0; i < s.Vips.Length; i++)
            {
                sb.Append(i == 0 ? "\"" : ", \"").Append(s.Vips[i].Network).Append('/').Append(s.Vips[i].Address).Append('"');
            }
            sb.Append("]\n  ports:\n");
            foreach (var (port, target) in s.Ports)
            {
                sb.Append("    ").Append(port).Append(": ").Append(target).Append('\n');
            }
        }
        sb.Append("policies:\n");
        foreach (AuthorizationPolicy p in config.Policies)
        {
            sb.Append("- name: ").Append(p.Name).Append('\n');
            Field(sb, "namespace", p.Namespace);
            Field(sb, "scope", p.Scope.ToString());
            Field(sb, "action", p.Action.ToString());
            sb.Append("  rules:\n");
            foreach (PolicyRule rule in p.Rules)
            {
                string rulePrefix = "  - ";
                foreach (PolicyClause clause in rule.Clauses)
                {
                    string clausePrefix = rulePrefix + "- ";
                    foreach (PolicyMatch m in clause.Matches)
                    {
                        Match(sb, clausePrefix + "- ", m);
                        clausePrefix = "      ";
                    }
                    rulePrefix = "    ";
                }
            }
        }
        return sb.ToString();
    }

    private static void Match(StringBuilder sb, string firstPrefix, PolicyMatch m)
    {
        string indent = new(' ', firstPrefix.Length);
        string prefix = firstPrefix;
        void List(string name, IEnumerable<string> values)
        {
            sb.Append(prefix).Append(name).Append(": [\"").AppendJoin("\", \"", values).Append("\"]\n");
            prefix = indent;
        }
        if (!m.Namespaces.IsDefaultOrEmpty)
        {
            List("namespaces", m.Namespaces.Select(Shorthand));
        }
        if (!m.Principals.IsDefaultOrEmpty)
        {
            List("principals", m.Principals.Select(Shorthand));
        }
        if (!m.SourceIps.IsDefaultOrEmpty)
        {
            List("sourceIps", m.SourceIps.Select(n => n.ToString()));
        }
        if (!m.DestinationPorts.IsDefaultOrEmpty)
        {
            sb.Append(prefix).Append("destinationPorts: [").AppendJoin(", ", m.DestinationPorts).Append("]\n");
            prefix = indent;
        }
        if (!m.NotDestinationPorts.IsDefaultOrEmpty)
        {
            sb.Append(prefix).Append("notDestinationPorts: [").AppendJoin(", ", m.NotDestinationPorts).Append("]\n");
        }
    }

    /// <summary>Istio's AuthorizationPolicy wildcard forms, which the loader accepts as plain strings.</summary>
    private static string Shorthand(StringMatch m) => m.Kind switch
    {
        StringMatchKind.Exact => m.Value,
        StringMatchKind.Prefix => m.Value + "*",
        StringMatchKind.Suffix => "*" + m.Value,
        _ => "*",
    };

    private static void Field(StringBuilder sb, string name, string value)
    {
        if (value.Length > 0)
        {
            sb.Append("  ").Append(name).Append(": ").Append(value).Append('\n');
        }
    }
}
