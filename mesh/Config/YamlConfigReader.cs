using System.Collections.Immutable;
using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Config;

/// <summary>
/// Walks the YAML representation model and collects every problem with its file, line, column and field
/// path, instead of stopping at the first (the way YARP's validators report config errors).
/// </summary>
internal sealed class YamlConfigReader(string file)
{
    private readonly List<ConfigError> _errors = [];
    private readonly List<ConfigError> _warnings = [];

    public string File { get; } = file;
    public bool HasErrors => _errors.Count > 0;

    /// <summary>Errors so far: a parser of one object compares it before and after to know whether that object failed.</summary>
    public int ErrorCount => _errors.Count;
    public ImmutableArray<ConfigError> Errors => [.. _errors];
    public ImmutableArray<ConfigError> Warnings => [.. _warnings];

    public void Error(YamlNode? node, string field, string message) => _errors.Add(At(node, field, message));

    public void Warning(YamlNode? node, string field, string message) => _warnings.Add(At(node, field, message));

    private ConfigError At(YamlNode? node, string field, string message) => node is null
        ? new ConfigError(File, 0, 0, field, message)
        : new ConfigError(File, (int)node.Start.Line, (int)node.Start.Column, field, message);

    public static string Child(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    public static string Index(string path, int i) => $"{path}[{i}]";

    /// <summary>YAML null: an absent value, "~" or "null" (plain, untagged).</summary>
    public static bool IsNull(YamlNode node) => node is YamlScalarNode s && s.Tag.IsEmpty
        && s.Style is YamlDotNet.Core.ScalarStyle.Plain or YamlDotNet.Core.ScalarStyle.Any
        && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    public YamlMappingNode? Mapping(YamlNode node, string path)
    {
        if (node is YamlMappingNode m)
        {
            return m;
        }
        if (!IsNull(node))
        {
            Error(node, path, $"expected a mapping (key: value), found {Describe(node)}");
        }
        return null;
    }

    public YamlSequenceNode? Sequence(YamlNode node, string path)
    {
        if (node is YamlSequenceNode s)
        {
            return s;
        }
        if (!IsNull(node))
        {
            Error(node, path, $"expected a list, found {Describe(node)}");
        }
        return null;
    }

    public string? String(YamlNode node, string path)
    {
        if (node is YamlScalarNode s)
        {
            return IsNull(node) ? null : s.Value ?? "";
        }
        Error(node, path, $"expected a string, found {Describe(node)}");
        return null;
    }

    public bool? Bool(YamlNode node, string path)
    {
        string? s = String(node, path);
        if (s is null)
        {
            return null;
        }
        // YAML 1.2 core schema (what serde_yaml reads): only true/false.
        if (string.Equals(s, "true", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        if (string.Equals(s, "false", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        Error(node, path, $"'{s}' is not a boolean (true or false)");
        return null;
    }

    public long? Integer(YamlNode node, string path, long min, long max)
    {
        string? s = String(node, path);
        if (s is null)
        {
            return null;
        }
        if (!long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
        {
            Error(node, path, $"'{s}' is not an integer");
            return null;
        }
        if (v < min || v > max)
        {
            Error(node, path, $"{v} is out of range ({min}-{max})");
            return null;
        }
        return v;
    }

    public int? Port(YamlNode node, string path, bool allowZero)
    {
        long? v = Integer(node, path, allowZero ? 0 : 1, 65535);
        return v is null ? null : (int)v;
    }

    /// <summary>An enum value by its config spelling; the message lists the allowed spellings.</summary>
    public T? Enum<T>(YamlNode node, string path, IReadOnlyList<(string Name, T Value)> allowed)
        where T : struct
    {
        string? s = String(node, path);
        if (s is null)
        {
            return null;
        }
        foreach ((string name, T value) in allowed)
        {
            // Istio spells enums in PascalCase or UPPER (TCP, HBONE); accept any case, the intent is unambiguous.
            if (string.Equals(name, s, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }
        var names = new List<string>(allowed.Count);
        foreach ((string name, _) in allowed)
        {
            if (!names.Contains(name))
            {
                names.Add(name);
            }
        }
        Error(node, path, $"'{s}' is not one of: {string.Join(", ", names)}");
        return null;
    }

    /// <summary>
    /// Reports a key the schema does not know. <paramref name="strict"/> objects (top level, project blocks,
    /// policy matches) make every unknown key an error: ignoring a misspelt match field would widen an ALLOW
    /// policy. Elsewhere an unknown key is only a warning, so a field added by a newer Istio still loads,
    /// unless it is a near miss of a known key ("serviceAcount"), which is almost surely a typo.
    /// </summary>
    public void UnknownKey(YamlScalarNode key, string path, IReadOnlyList<string> known, bool strict)
    {
        string name = key.Value ?? "";
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string k in known)
        {
            int d = ConfigValues.Distance(name, k);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = k;
            }
        }
        bool nearMiss = best is not null && bestDistance <= Math.Max(1, Math.Min(2, best.Length / 4));
        string field = Child(path, name);
        if (nearMiss)
        {
            Error(key, field, $"unknown field '{name}'; did you mean '{best}'?");
        }
        else if (strict)
        {
            Error(key, field, $"unknown field '{name}'; expected one of: {string.Join(", ", known)}");
        }
        else
        {
            Warning(key, field, $"unknown field '{name}' ignored");
        }
    }

    /// <summary>Iterates a mapping's entries with string keys; a non-scalar key is an error.</summary>
    public IEnumerable<(YamlScalarNode Key, string Name, YamlNode Value)> Entries(YamlMappingNode map, string path)
    {
        foreach (KeyValuePair<YamlNode, YamlNode> kv in map.Children)
        {
            if (kv.Key is YamlScalarNode k)
            {
                yield return (k, k.Value ?? "", kv.Value);
            }
            else
            {
                Error(kv.Key, path, $"a key must be a string, found {Describe(kv.Key)}");
            }
        }
    }

    public static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        YamlScalarNode s when IsNull(s) => "nothing",
        YamlScalarNode s => $"'{s.Value}'",
        _ => node.NodeType.ToString(),
    };
}
