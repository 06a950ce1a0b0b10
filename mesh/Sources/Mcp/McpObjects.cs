using System.Collections.Immutable;
using System.Globalization;
using Ambient.Mesh.Kubernetes;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;
using YamlDotNet.RepresentationModel;
using Pm = Ambient.Mesh.Protos.Istio.Mcp;
using Pn = Ambient.Mesh.Protos.Istio.Networking;

namespace Ambient.Mesh.Sources.Mcp;

/// <summary>An MCP resource that cannot be taken (wrong type, bad name, unreadable body); the message says why.</summary>
internal sealed class McpResourceException(string message) : Exception(message);

/// <summary>
/// Turns an MCP resource (an <c>istio.mcp.v1alpha1.Resource</c> whose body is an Istio ServiceEntry or WorkloadEntry)
/// into the <see cref="KubeObject"/> a manifest or the Kubernetes API would give, so the one
/// <see cref="KubeTranslator"/> gives it Istio's meaning. The spec is rebuilt field by field as the YAML tree the
/// translator reads (no reflection: the agent is compiled ahead of time).
/// </summary>
internal static class McpObjects
{
    public const string ResourceType = "type.googleapis.com/istio.mcp.v1alpha1.Resource";

    /// <summary>The kinds an MCP registry serves here.</summary>
    public static readonly string[] Kinds = ["ServiceEntry", "WorkloadEntry"];

    /// <summary>The API versions of networking.istio.io whose specs share one wire schema.</summary>
    public static readonly string[] Versions = ["v1", "v1beta1", "v1alpha3"];

    /// <summary>The MCP type URL (a GVK) for a kind: <c>networking.istio.io/v1/ServiceEntry</c>.</summary>
    public static string TypeUrl(string version, string kind) => $"networking.istio.io/{version}/{kind}";

    /// <summary>The kind a type URL names in any of the accepted spellings, or null.</summary>
    public static string? KindOf(string typeUrl)
    {
        foreach (string version in Versions)
        {
            foreach (string kind in Kinds)
            {
                if (typeUrl == TypeUrl(version, kind))
                {
                    return kind;
                }
            }
        }
        return null;
    }

    /// <summary>The resource's "ns/name" (the name MCP errors use); throws when it is not one of ours.</summary>
    public static Pm.Resource Unwrap(Any any)
    {
        if (any.TypeUrl != ResourceType)
        {
            throw new McpResourceException($"a {any.TypeUrl}, not an {ResourceType}");
        }
        return Pm.Resource.Parser.ParseFrom(any.Value);
    }

    /// <summary>The object an MCP resource carries. Throws <see cref="McpResourceException"/> or <see cref="InvalidProtocolBufferException"/>.</summary>
    public static KubeObject ToObject(string kind, string version, Pm.Resource resource)
    {
        Pm.Metadata meta = resource.Metadata ?? throw new McpResourceException("no metadata");
        (string ns, string name) = SplitName(meta.Name);
        if (resource.Body is not { } body)
        {
            throw new McpResourceException("no body");
        }
        string expected = $"istio.networking.*.{kind}";
        string bodyType = body.TypeUrl[(body.TypeUrl.LastIndexOf('/') + 1)..];
        if (!Versions.Any(v => bodyType == $"istio.networking.{v}.{kind}"))
        {
            throw new McpResourceException($"the body is a {bodyType}, not an {expected}");
        }
        YamlMappingNode spec = kind == "ServiceEntry"
            ? ServiceEntry(Pn.ServiceEntry.Parser.ParseFrom(body.Value))
            : WorkloadEntry(Pn.WorkloadEntry.Parser.ParseFrom(body.Value));
        var metadata = new YamlMappingNode { { "name", name }, { "namespace", ns } };
        if (meta.Labels.Count > 0)
        {
            metadata.Add("labels", StringMap(meta.Labels));
        }
        if (meta.Annotations.Count > 0)
        {
            metadata.Add("annotations", StringMap(meta.Annotations));
        }
        string apiVersion = $"networking.istio.io/{version}";
        var root = new YamlMappingNode { { "apiVersion", apiVersion }, { "kind", kind }, { "metadata", metadata }, { "spec", spec } };
        return new KubeObject(apiVersion, kind, ns, name, root, file: null)
        {
            ResourceVersion = meta.Version,
            Labels = meta.Labels.ToImmutableDictionary(StringComparer.Ordinal),
            Annotations = meta.Annotations.ToImmutableDictionary(StringComparer.Ordinal),
        };
    }

    /// <summary>MCP names a namespaced object "ns/name" (Istio also accepts a leading '/'); both parts must be present.</summary>
    public static (string Namespace, string Name) SplitName(string fullName)
    {
        string n = fullName.TrimStart('/');
        int slash = n.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == n.Length - 1 || n.IndexOf('/', slash + 1) >= 0)
        {
            throw new McpResourceException($"metadata.name '{fullName}' is not 'namespace/name'");
        }
        return (n[..slash], n[(slash + 1)..]);
    }

    private static YamlMappingNode ServiceEntry(Pn.ServiceEntry se)
    {
        var spec = new YamlMappingNode();
        AddStrings(spec, "hosts", se.Hosts);
        AddStrings(spec, "addresses", se.Addresses);
        if (se.Ports.Count > 0)
        {
            var ports = new YamlSequenceNode();
            foreach (Pn.ServicePort p in se.Ports)
            {
                var port = new YamlMappingNode { { "number", Number(p.Number) }, { "name", p.Name } };
                if (p.Protocol.Length > 0)
                {
                    port.Add("protocol", p.Protocol);
                }
                if (p.TargetPort != 0)
                {
                    port.Add("targetPort", Number(p.TargetPort));
                }
                ports.Add(port);
            }
            spec.Add("ports", ports);
        }
        spec.Add("location", se.Location == Pn.ServiceEntry.Types.Location.MeshInternal ? "MESH_INTERNAL" : "MESH_EXTERNAL");
        spec.Add("resolution", se.Resolution switch
        {
            Pn.ServiceEntry.Types.Resolution.Static => "STATIC",
            Pn.ServiceEntry.Types.Resolution.Dns => "DNS",
            Pn.ServiceEntry.Types.Resolution.DnsRoundRobin => "DNS_ROUND_ROBIN",
            Pn.ServiceEntry.Types.Resolution.DynamicDns => "DYNAMIC_DNS",
            Pn.ServiceEntry.Types.Resolution.None => "NONE",
            var other => ((int)other).ToString(CultureInfo.InvariantCulture),
        });
        if (se.Endpoints.Count > 0)
        {
            var endpoints = new YamlSequenceNode();
            foreach (Pn.WorkloadEntry e in se.Endpoints)
            {
                endpoints.Add(WorkloadEntry(e));
            }
            spec.Add("endpoints", endpoints);
        }
        if (se.WorkloadSelector is { } selector)
        {
            spec.Add("workloadSelector", new YamlMappingNode { { "labels", StringMap(selector.Labels) } });
        }
        AddStrings(spec, "exportTo", se.ExportTo);
        AddStrings(spec, "subjectAltNames", se.SubjectAltNames);
        return spec;
    }

    private static YamlMappingNode WorkloadEntry(Pn.WorkloadEntry e)
    {
        var spec = new YamlMappingNode();
        if (e.Address.Length > 0)
        {
            spec.Add("address", e.Address);
        }
        if (e.Ports.Count > 0)
        {
            var ports = new YamlMappingNode();
            foreach ((string name, uint number) in e.Ports.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                ports.Add(name, Number(number));
            }
            spec.Add("ports", ports);
        }
        if (e.Labels.Count > 0)
        {
            spec.Add("labels", StringMap(e.Labels));
        }
        AddString(spec, "network", e.Network);
        AddString(spec, "locality", e.Locality);
        if (e.Weight != 0)
        {
            spec.Add("weight", Number(e.Weight));
        }
        AddString(spec, "serviceAccount", e.ServiceAccount);
        return spec;
    }

    private static YamlScalarNode Number(uint n) => new(n.ToString(CultureInfo.InvariantCulture));

    private static void AddString(YamlMappingNode map, string key, string value)
    {
        if (value.Length > 0)
        {
            map.Add(key, value);
        }
    }

    private static void AddStrings(YamlMappingNode map, string key, RepeatedField<string> values)
    {
        if (values.Count > 0)
        {
            map.Add(key, new YamlSequenceNode(values.Select(v => new YamlScalarNode(v))));
        }
    }

    private static YamlMappingNode StringMap(MapField<string, string> values)
    {
        var map = new YamlMappingNode();
        foreach ((string k, string v) in values.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            map.Add(k, v);
        }
        return map;
    }
}
