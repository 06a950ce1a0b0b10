using System.Collections.Immutable;
using System.Globalization;
using System.Text.RegularExpressions;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model.L7;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Kubernetes.L7;

/// <summary>
/// Reads the <c>spec</c> of a Kubernetes custom resource the way the API server's structural schema and the
/// owning project's admission webhook would: exact types (a quoted "80" is not an integer), case-sensitive enums,
/// length and item limits, and every unknown field an error (a misspelt field would otherwise be dropped
/// silently and widen what a route or policy does). Each problem goes to the shared
/// <see cref="YamlConfigReader"/> with its field path and line, and reading always continues so the user sees
/// all of them at once.
/// </summary>
internal sealed partial class SpecReader(YamlConfigReader r)
{
    public YamlConfigReader Errors => r;

    public int ErrorCount => r.ErrorCount;

    public void Error(YamlNode? node, string path, string message) => r.Error(node, path, message);

    public void Warning(YamlNode? node, string path, string message) => r.Warning(node, path, message);

    /// <summary>An unknown field: always an error here (see the class remarks), with a suggestion for a near miss.</summary>
    public void Unknown(YamlScalarNode key, string path, IReadOnlyList<string> known) => r.UnknownKey(key, path, known, strict: true);

    /// <summary>A required field that is absent: reported at the object that lacks it.</summary>
    public void Missing(YamlNode at, string path, string field, string what) =>
        r.Error(at, YamlConfigReader.Child(path, field), $"required: {what}");

    /// <summary>True when <paramref name="node"/> is an object with <paramref name="key"/> set to something other than null.</summary>
    public static bool Has(YamlNode node, string key) =>
        node is YamlMappingNode m && m.Children.TryGetValue(new YamlScalarNode(key), out YamlNode? v) && !IsNull(v);

    /// <summary>
    /// Reports <paramref name="field"/> as required when it is absent or null. A field that is present but invalid
    /// was already reported where it was read, so it is not reported twice.
    /// </summary>
    public bool Require(YamlNode node, string path, string field, string what)
    {
        if (Has(node, field))
        {
            return true;
        }
        Missing(node, path, field, what);
        return false;
    }

    /// <summary>The fields of an object with their paths; an error (and nothing) if the node is not an object.</summary>
    public IEnumerable<(YamlScalarNode Key, string Name, YamlNode Value, string Path)> Fields(YamlNode node, string path)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            yield break;
        }
        foreach ((YamlScalarNode key, string name, YamlNode value) in r.Entries(map, path))
        {
            yield return (key, name, value, YamlConfigReader.Child(path, name));
        }
    }

    /// <summary>
    /// An object with a single field (<c>{number: 80}</c>, <c>{value: 12.5}</c>, <c>{maxSize: 1024}</c>): reads that
    /// field with <paramref name="read"/> and reports any other as unknown.
    /// </summary>
    public void OnlyField(YamlNode node, string path, string field, Action<YamlNode, string> read)
    {
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in Fields(node, path))
        {
            if (key == field)
            {
                read(v, p);
            }
            else
            {
                Unknown(k, path, [field]);
            }
        }
    }

    public static bool IsNull(YamlNode node) => YamlConfigReader.IsNull(node);

    /// <summary>The fields of a reference to another object; null where absent or invalid (already reported).</summary>
    /// <param name="Namespace">Null when absent or empty (the referring object's namespace).</param>
    public readonly record struct ObjectRefFields(string Group, string? Kind, string? Name, string? Namespace, YamlNode? NamespaceNode);

    /// <summary>
    /// Reads <c>{group, kind, name}</c> (and <c>namespace</c> when <paramref name="withNamespace"/>) with the Gateway
    /// API's shapes for each; an absent group is "" (the core group). Which kinds are allowed is the caller's check.
    /// </summary>
    public ObjectRefFields ObjectRef(YamlNode node, string path, bool withNamespace)
    {
        string group = "";
        string? kind = null, name = null, ns = null;
        YamlNode? nsNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in Fields(node, path))
        {
            switch (key)
            {
                case "group":
                    group = String(v, p, 0, 253) is { } g && (g.Length == 0 || Matches(g, KubeNames.DnsSubdomain(), v, p, KubeNames.DnsSubdomainHint)) ? g : group;
                    break;
                case "kind":
                    kind = String(v, p, 1, 63, KubeNames.Kind(), KubeNames.KindHint);
                    break;
                case "name":
                    name = String(v, p, 1, 253);
                    break;
                case "namespace" when withNamespace:
                    nsNode = v;
                    ns = String(v, p, 0, 63, KubeNames.DnsLabel(), KubeNames.DnsLabelHint) is { Length: > 0 } n ? n : null;
                    break;
                default:
                    Unknown(k, path, withNamespace ? ["group", "kind", "name", "namespace"] : ["group", "kind", "name"]);
                    break;
            }
        }
        return new ObjectRefFields(group, kind, name, ns, nsNode);
    }

    /// <summary>True when <paramref name="value"/> matches <paramref name="pattern"/>; else reports <paramref name="hint"/>.</summary>
    public bool Matches(string value, Regex pattern, YamlNode node, string path, string hint)
    {
        if (pattern.IsMatch(value))
        {
            return true;
        }
        r.Error(node, path, $"'{value}' {hint}");
        return false;
    }

    private static bool IsQuoted(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted };

    public string? String(YamlNode node, string path) => r.String(node, path);

    /// <summary>A string with the schema's limits; <paramref name="pattern"/> failing reports <paramref name="patternHint"/>.</summary>
    public string? String(YamlNode node, string path, int minLength, int maxLength, Regex? pattern = null, string? patternHint = null)
    {
        string? s = r.String(node, path);
        if (s is null)
        {
            return null;
        }
        if (s.Length < minLength)
        {
            r.Error(node, path, minLength == 1 ? "must not be empty" : $"must be at least {minLength} characters");
            return null;
        }
        if (s.Length > maxLength)
        {
            r.Error(node, path, $"must be at most {maxLength} characters (is {s.Length})");
            return null;
        }
        if (pattern is not null && s.Length > 0 && !pattern.IsMatch(s))
        {
            r.Error(node, path, $"'{s}' {patternHint ?? $"does not match {pattern}"}");
            return null;
        }
        return s;
    }

    /// <summary>A non-empty string (a required name, a host).</summary>
    public string? NonEmpty(YamlNode node, string path) => String(node, path, 1, int.MaxValue);

    public long? Long(YamlNode node, string path, long min, long max)
    {
        if (IsQuoted(node))
        {
            r.Error(node, path, $"expected an integer, found the string {YamlConfigReader.Describe(node)}");
            return null;
        }
        return r.Integer(node, path, min, max);
    }

    public int? Int(YamlNode node, string path, int min = int.MinValue, int max = int.MaxValue) =>
        Long(node, path, min, max) is long v ? (int)v : null;

    /// <summary>A protobuf uint32 (Istio's counts and ports).</summary>
    public uint? UInt(YamlNode node, string path) => Long(node, path, 0, uint.MaxValue) is long v ? (uint)v : null;

    public bool? Bool(YamlNode node, string path)
    {
        if (IsQuoted(node))
        {
            r.Error(node, path, $"expected true or false, found the string {YamlConfigReader.Describe(node)}");
            return null;
        }
        return r.Bool(node, path);
    }

    public double? Double(YamlNode node, string path, double min, double max)
    {
        if (IsQuoted(node))
        {
            r.Error(node, path, $"expected a number, found the string {YamlConfigReader.Describe(node)}");
            return null;
        }
        string? s = r.String(node, path);
        if (s is null)
        {
            return null;
        }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
        {
            r.Error(node, path, $"'{s}' is not a number");
            return null;
        }
        if (v < min || v > max)
        {
            r.Error(node, path, $"{s} is out of range ({min.ToString(CultureInfo.InvariantCulture)}-{max.ToString(CultureInfo.InvariantCulture)})");
            return null;
        }
        return v;
    }

    /// <summary>
    /// An enum by its exact spelling: the API server's enum check is case-sensitive ("pathprefix" is refused), and
    /// so is protobuf's JSON enum parsing in Istio.
    /// </summary>
    public T? Enum<T>(YamlNode node, string path, IReadOnlyList<(string Name, T Value)> allowed)
        where T : struct
    {
        string? s = r.String(node, path);
        if (s is null)
        {
            return null;
        }
        foreach ((string name, T value) in allowed)
        {
            if (name == s)
            {
                return value;
            }
        }
        var names = new List<string>(allowed.Count);
        foreach ((string name, _) in allowed)
        {
            names.Add(name);
        }
        r.Error(node, path, $"'{s}' is not one of: {string.Join(", ", names)}");
        return null;
    }

    /// <summary>A string that must be one of a fixed set (kept as the string).</summary>
    public string? OneOf(YamlNode node, string path, IReadOnlyList<string> allowed)
    {
        string? s = r.String(node, path);
        if (s is null)
        {
            return null;
        }
        foreach (string a in allowed)
        {
            if (a == s)
            {
                return s;
            }
        }
        r.Error(node, path, $"'{s}' is not one of: {string.Join(", ", allowed)}");
        return null;
    }

    /// <summary>
    /// A Gateway API duration (GEP-2257): one to four groups of up to five digits and a unit h, m, s or ms, such as
    /// "1h" or "1m30s"; fractions are not allowed ("1.5s" must be written "1500ms"). "0s" is zero (for timeouts: none).
    /// </summary>
    public TimeSpan? GatewayDuration(YamlNode node, string path)
    {
        string? s = r.String(node, path);
        if (s is null)
        {
            return null;
        }
        if (!GatewayDurationPattern().IsMatch(s) || !ConfigValues.TryParseDuration(s, out TimeSpan value, out _))
        {
            r.Error(node, path, $"'{s}' is not a Gateway API duration; write whole numbers with h, m, s or ms, e.g. \"10s\", \"1m30s\", \"500ms\"");
            return null;
        }
        return value;
    }

    /// <summary>
    /// An Istio duration ("10s", "1m", "500ms", "1h30m", "1.5s"): at least 1 ms and whole milliseconds, as Istio's
    /// validation requires. <paramref name="allowZero"/> for the fields where "0s" means "disabled".
    /// </summary>
    public TimeSpan? IstioDuration(YamlNode node, string path, bool allowZero = false)
    {
        string? s = r.String(node, path);
        if (s is null)
        {
            return null;
        }
        if (s.StartsWith('-'))
        {
            r.Error(node, path, $"'{s}' is negative; a duration must be at least 1ms");
            return null;
        }
        if (!ConfigValues.TryParseDuration(s, out TimeSpan value, out string error))
        {
            r.Error(node, path, error);
            return null;
        }
        if (value == TimeSpan.Zero && allowZero)
        {
            return value;
        }
        if (value < TimeSpan.FromMilliseconds(1))
        {
            r.Error(node, path, $"'{s}' is too short; a duration must be at least 1ms");
            return null;
        }
        if (value.Ticks % TimeSpan.TicksPerMillisecond != 0)
        {
            r.Error(node, path, $"'{s}' is finer than a millisecond; only whole milliseconds are supported");
            return null;
        }
        return value;
    }

    /// <summary>A regular expression, compiled (see <see cref="SafeRegex"/>).</summary>
    public SafeRegex? Regex(YamlNode node, string path, bool ignoreCase = false)
    {
        string? s = r.String(node, path);
        return s is null ? null : CompileRegex(s, node, path, ignoreCase);
    }

    public SafeRegex? CompileRegex(string pattern, YamlNode node, string path, bool ignoreCase = false, bool fullMatch = true)
    {
        if (!SafeRegex.TryCreate(pattern, ignoreCase, fullMatch, out SafeRegex? regex, out string error))
        {
            r.Error(node, path, error);
            return null;
        }
        return regex;
    }

    /// <summary>A list of objects; items that fail are left out (the object as a whole fails through its errors).</summary>
    public ImmutableArray<T> List<T>(YamlNode node, string path, int maxItems, Func<YamlNode, string, T?> item)
        where T : class
    {
        YamlSequenceNode? seq = Sequence(node, path, maxItems);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<T>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string p = YamlConfigReader.Index(path, i);
            YamlNode child = seq.Children[i];
            if (IsNull(child))
            {
                r.Error(child, p, "empty entry");
                continue;
            }
            if (item(child, p) is { } v)
            {
                b.Add(v);
            }
        }
        return b.ToImmutable();
    }

    /// <summary>A list of scalars (numbers, enums).</summary>
    public ImmutableArray<T> Values<T>(YamlNode node, string path, int maxItems, Func<YamlNode, string, T?> item)
        where T : struct
    {
        YamlSequenceNode? seq = Sequence(node, path, maxItems);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<T>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            if (item(seq.Children[i], YamlConfigReader.Index(path, i)) is T v)
            {
                b.Add(v);
            }
        }
        return b.ToImmutable();
    }

    /// <summary>
    /// A list of strings; <paramref name="check"/> (optional) validates each and returns it or null.
    /// <paramref name="unique"/> refuses repeats, as the API server does for <c>listType=set</c>.
    /// </summary>
    public ImmutableArray<string> Strings(YamlNode node, string path, int maxItems = int.MaxValue,
        Func<YamlNode, string, string?>? check = null, bool unique = false)
    {
        YamlSequenceNode? seq = Sequence(node, path, maxItems);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<string>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string p = YamlConfigReader.Index(path, i);
            string? s = check is null ? r.String(seq.Children[i], p) : check(seq.Children[i], p);
            if (s is null)
            {
                continue;
            }
            if (unique && b.Contains(s))
            {
                r.Error(seq.Children[i], p, $"duplicate value '{s}'");
                continue;
            }
            b.Add(s);
        }
        return b.ToImmutable();
    }

    private YamlSequenceNode? Sequence(YamlNode node, string path, int maxItems)
    {
        YamlSequenceNode? seq = r.Sequence(node, path);
        if (seq is not null && seq.Children.Count > maxItems)
        {
            r.Error(node, path, $"too many entries: {seq.Children.Count} (at most {maxItems})");
        }
        return seq;
    }

    /// <summary>A map of string to string (labels, Istio header operations); <paramref name="check"/> validates each entry.</summary>
    public ImmutableDictionary<string, string> StringMap(YamlNode node, string path,
        Action<YamlScalarNode, string, string, YamlNode, string>? check = null)
    {
        var b = ImmutableDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach ((YamlScalarNode key, string name, YamlNode value, string p) in Fields(node, path))
        {
            string? v = r.String(value, p);
            if (v is null)
            {
                continue;
            }
            check?.Invoke(key, name, v, value, p);
            b[name] = v;
        }
        return b.ToImmutable();
    }

    /// <summary>A map whose values are objects.</summary>
    public ImmutableDictionary<string, T> Map<T>(YamlNode node, string path, Func<YamlScalarNode, string, YamlNode, string, T?> item)
        where T : class
    {
        var b = ImmutableDictionary.CreateBuilder<string, T>(StringComparer.Ordinal);
        foreach ((YamlScalarNode key, string name, YamlNode value, string p) in Fields(node, path))
        {
            if (item(key, name, value, p) is { } v)
            {
                b[name] = v;
            }
        }
        return b.ToImmutable();
    }

    [GeneratedRegex("^([0-9]{1,5}(h|m|s|ms)){1,4}$", RegexOptions.CultureInvariant)]
    private static partial Regex GatewayDurationPattern();
}
