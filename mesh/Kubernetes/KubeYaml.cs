using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes;

/// <summary>
/// Reading Kubernetes object fields from the YAML node tree. Lookups walk the (small) mapping instead of
/// building a key node, so reading a field allocates nothing; typed reads go through the
/// <see cref="YamlConfigReader"/>, so a wrong type becomes an error with the field path and line.
/// </summary>
internal static class KubeYaml
{
    /// <summary>The value of <paramref name="key"/> in <paramref name="map"/>, or null when absent or YAML null.</summary>
    public static YamlNode? Get(YamlMappingNode? map, string key)
    {
        if (map is null)
        {
            return null;
        }
        foreach (KeyValuePair<YamlNode, YamlNode> kv in map.Children)
        {
            if (kv.Key is YamlScalarNode k && string.Equals(k.Value, key, StringComparison.Ordinal))
            {
                return IsNull(kv.Value) ? null : kv.Value;
            }
        }
        return null;
    }

    /// <summary>A child mapping; a value of another type is an error.</summary>
    public static YamlMappingNode? Map(YamlConfigReader r, YamlMappingNode? parent, string key, string path) =>
        Get(parent, key) is { } node ? r.Mapping(node, Child(path, key)) : null;

    /// <summary>A child list; a value of another type is an error.</summary>
    public static YamlSequenceNode? Seq(YamlConfigReader r, YamlMappingNode? parent, string key, string path) =>
        Get(parent, key) is { } node ? r.Sequence(node, Child(path, key)) : null;

    /// <summary>A child string; null when absent.</summary>
    public static string? Str(YamlConfigReader r, YamlMappingNode? parent, string key, string path) =>
        Get(parent, key) is { } node ? r.String(node, Child(path, key)) : null;

    /// <summary>The scalar text of a child, without reporting anything (for optional, informational fields).</summary>
    public static string? Text(YamlMappingNode? parent, string key) => Get(parent, key) is YamlScalarNode s ? s.Value : null;

    /// <summary>A list of strings; non-strings are errors.</summary>
    public static ImmutableArray<string> Strings(YamlConfigReader r, YamlMappingNode? parent, string key, string path)
    {
        YamlSequenceNode? seq = Seq(r, parent, key, path);
        if (seq is null || seq.Children.Count == 0)
        {
            return [];
        }
        string field = Child(path, key);
        var b = ImmutableArray.CreateBuilder<string>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            if (r.String(seq.Children[i], Index(field, i)) is { } s)
            {
                b.Add(s);
            }
        }
        return b.MoveToImmutable();
    }

    /// <summary>A string-to-string map (labels, matchLabels); a nested value is an error.</summary>
    public static ImmutableDictionary<string, string> StringMap(YamlConfigReader r, YamlNode node, string path)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null || map.Children.Count == 0)
        {
            return ImmutableDictionary<string, string>.Empty;
        }
        var b = ImmutableDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach ((_, string key, YamlNode value) in r.Entries(map, path))
        {
            // Kubernetes label values are strings; YAML `version: 1` is the scalar "1", which is what kubectl sends.
            b[key] = (value is YamlScalarNode && IsNull(value)) ? "" : r.String(value, $"{path}[\"{key}\"]") ?? "";
        }
        return b.ToImmutable();
    }

    /// <summary>An integer field in a range; null when absent or bad (bad is an error).</summary>
    public static int? Int(YamlConfigReader r, YamlMappingNode? parent, string key, string path, int min, int max) =>
        Get(parent, key) is { } node ? (int?)r.Integer(node, Child(path, key), min, max) : null;

    public static int? Port(YamlConfigReader r, YamlMappingNode? parent, string key, string path) =>
        Int(r, parent, key, path, 1, 65535);

    /// <summary>An IP address; a bad one is an error.</summary>
    public static IPAddress? Ip(YamlConfigReader r, YamlNode node, string path)
    {
        string? text = r.String(node, path);
        if (text is null || text.Length == 0)
        {
            return null;
        }
        if (!ConfigValues.TryParseIp(text, out IPAddress ip, out string error))
        {
            r.Error(node, path, error);
            return null;
        }
        return ip;
    }

    /// <summary>A list of CIDRs or addresses (policy ipBlocks); a bad entry is an error.</summary>
    public static ImmutableArray<IpNet> Cidrs(YamlConfigReader r, YamlMappingNode? parent, string key, string path)
    {
        YamlSequenceNode? seq = Seq(r, parent, key, path);
        if (seq is null || seq.Children.Count == 0)
        {
            return [];
        }
        string field = Child(path, key);
        var b = ImmutableArray.CreateBuilder<IpNet>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string? text = r.String(seq.Children[i], Index(field, i));
            if (text is null)
            {
                continue;
            }
            if (ConfigValues.TryParseCidr(text, out IpNet net, out string error))
            {
                b.Add(net);
            }
            else
            {
                r.Error(seq.Children[i], Index(field, i), error);
            }
        }
        return b.ToImmutable();
    }

    /// <summary>A list of port numbers written as strings or numbers (Istio's operation.ports); a bad one is an error.</summary>
    public static ImmutableArray<int> PortList(YamlConfigReader r, YamlMappingNode? parent, string key, string path)
    {
        YamlSequenceNode? seq = Seq(r, parent, key, path);
        if (seq is null || seq.Children.Count == 0)
        {
            return [];
        }
        string field = Child(path, key);
        var b = ImmutableArray.CreateBuilder<int>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            if (r.Port(seq.Children[i], Index(field, i), allowZero: false) is int p)
            {
                b.Add(p);
            }
        }
        return b.ToImmutable();
    }

    /// <summary>An RFC 3339 timestamp (metadata.creationTimestamp); null when absent or unparsable.</summary>
    public static DateTimeOffset? Timestamp(YamlMappingNode? parent, string key) =>
        Text(parent, key) is { Length: > 0 } s
        && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset t)
            ? t
            : null;

    /// <summary>A port given as a number, or a digit-only string (YAML "8080"), or a name: Kubernetes' IntOrString.</summary>
    public static (int Number, string? Name)? IntOrString(YamlConfigReader r, YamlNode node, string path)
    {
        string? text = r.String(node, path);
        if (text is null || text.Length == 0)
        {
            return null;
        }
        if (char.IsAsciiDigit(text[0]))
        {
            int? p = r.Port(node, path, allowZero: false);
            return p is int n ? (n, null) : null;
        }
        return (0, text);
    }
}
