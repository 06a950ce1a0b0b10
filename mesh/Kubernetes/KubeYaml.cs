using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes;

/// <summary>
/// A field path ("spec.containers[0].ports[1]") kept in parts and written out only when a message needs it, so
/// reading a field that is fine allocates nothing: the translator reads every field of 10,000 pods per run.
/// </summary>
internal readonly record struct FieldPath(string Base, int I = -1, string? Sub = null, int J = -1)
{
    public static implicit operator FieldPath(string path) => new(path);

    public string Child(string key) => YamlConfigReader.Child(ToString(), key);

    public override string ToString()
    {
        if (I < 0 && Sub is null)
        {
            return Base;
        }
        string s = I >= 0 ? Index(Base, I) : Base;
        if (Sub is not null)
        {
            s = YamlConfigReader.Child(s, Sub);
        }
        return J >= 0 ? Index(s, J) : s;
    }
}

/// <summary>
/// Reading Kubernetes object fields from the YAML node tree. Lookups walk the (small) mapping by position instead of
/// building a key node or an enumerator, and a field of the expected type is read without touching the
/// <see cref="YamlConfigReader"/>; only a wrong one goes through it, so the error has its field path and line.
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
        YamlDotNet.Helpers.IOrderedDictionary<YamlNode, YamlNode> children = map.Children;
        for (int i = 0; i < children.Count; i++)
        {
            KeyValuePair<YamlNode, YamlNode> kv = children[i];
            if (kv.Key is YamlScalarNode k && string.Equals(k.Value, key, StringComparison.Ordinal))
            {
                return IsNull(kv.Value) ? null : kv.Value;
            }
        }
        return null;
    }

    /// <summary>A node that must be a mapping; anything else but null is an error.</summary>
    public static YamlMappingNode? AsMap(YamlConfigReader r, YamlNode node, FieldPath path) =>
        node as YamlMappingNode ?? r.Mapping(node, path.ToString());

    /// <summary>A child mapping; a value of another type is an error.</summary>
    public static YamlMappingNode? Map(YamlConfigReader r, YamlMappingNode? parent, string key, FieldPath path) =>
        Get(parent, key) is { } node ? node as YamlMappingNode ?? r.Mapping(node, path.Child(key)) : null;

    /// <summary>A child list; a value of another type is an error.</summary>
    public static YamlSequenceNode? Seq(YamlConfigReader r, YamlMappingNode? parent, string key, FieldPath path) =>
        Get(parent, key) is { } node ? node as YamlSequenceNode ?? r.Sequence(node, path.Child(key)) : null;

    /// <summary>A child string; null when absent.</summary>
    public static string? Str(YamlConfigReader r, YamlMappingNode? parent, string key, FieldPath path) => Get(parent, key) switch
    {
        null => null,
        YamlScalarNode s => s.Value ?? "",
        YamlNode other => r.String(other, path.Child(key)),
    };

    /// <summary>The scalar text of a child, without reporting anything (for optional, informational fields).</summary>
    public static string? Text(YamlMappingNode? parent, string key) => Get(parent, key) is YamlScalarNode s ? s.Value : null;

    /// <summary>A list of strings; non-strings are errors.</summary>
    public static ImmutableArray<string> Strings(YamlConfigReader r, YamlMappingNode? parent, string key, FieldPath path)
    {
        YamlSequenceNode? seq = Seq(r, parent, key, path);
        if (seq is null || seq.Children.Count == 0)
        {
            return [];
        }
        string field = path.Child(key);
        var b = ImmutableArray.CreateBuilder<string>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            if (r.String(seq.Children[i], Index(field, i)) is { } s)
            {
                b.Add(s);
            }
        }
        return b.ToImmutable();
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
            b[key] = value is YamlScalarNode s ? (IsNull(s) ? "" : s.Value ?? "") : r.String(value, $"{path}[\"{key}\"]") ?? "";
        }
        return b.ToImmutable();
    }

    /// <summary>An integer field in a range; null when absent or bad (bad is an error).</summary>
    public static int? Int(YamlConfigReader r, YamlMappingNode? parent, string key, FieldPath path, int min, int max)
    {
        YamlNode? node = Get(parent, key);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode { Value: { } text } && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= min && v <= max)
        {
            return v;
        }
        return (int?)r.Integer(node, path.Child(key), min, max);
    }

    public static int? Port(YamlConfigReader r, YamlMappingNode? parent, string key, FieldPath path) =>
        Int(r, parent, key, path, 1, 65535);

    /// <summary>An IP address; a bad one is an error.</summary>
    public static IPAddress? Ip(YamlConfigReader r, YamlNode node, FieldPath path)
    {
        if (node is YamlScalarNode { Value: { Length: > 0 } text } && ConfigValues.TryParseIp(text, out IPAddress fast, out _))
        {
            return fast;
        }
        string p = path.ToString();
        string? s = r.String(node, p);
        if (s is null || s.Length == 0)
        {
            return null;
        }
        if (!ConfigValues.TryParseIp(s, out IPAddress ip, out string error))
        {
            r.Error(node, p, error);
            return null;
        }
        return ip;
    }

    /// <summary>A list of CIDRs or addresses (policy ipBlocks); a bad entry is an error.</summary>
    public static ImmutableArray<IpNet> Cidrs(YamlConfigReader r, YamlMappingNode? parent, string key, FieldPath path)
    {
        YamlSequenceNode? seq = Seq(r, parent, key, path);
        if (seq is null || seq.Children.Count == 0)
        {
            return [];
        }
        string field = path.Child(key);
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
    public static ImmutableArray<int> PortList(YamlConfigReader r, YamlMappingNode? parent, string key, FieldPath path)
    {
        YamlSequenceNode? seq = Seq(r, parent, key, path);
        if (seq is null || seq.Children.Count == 0)
        {
            return [];
        }
        string field = path.Child(key);
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
    public static (int Number, string? Name)? IntOrString(YamlConfigReader r, YamlMappingNode parent, string key, FieldPath path)
    {
        YamlNode? node = Get(parent, key);
        if (node is not YamlScalarNode { Value: { Length: > 0 } text })
        {
            if (node is not null)
            {
                r.String(node, path.Child(key)); // reports a list or mapping
            }
            return null;
        }
        if (char.IsAsciiDigit(text[0]))
        {
            int? p = Port(r, parent, key, path);
            return p is int n ? (n, null) : null;
        }
        return (0, text);
    }
}
