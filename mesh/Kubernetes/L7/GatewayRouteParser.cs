using System.Collections.Immutable;
using Ambient.Mesh.Model.L7;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes.L7;

/// <summary>
/// What HTTPRoute and GRPCRoute share (gateway.networking.k8s.io/v1): parent and backend references, hostnames,
/// header matches and the filters, validated as the Gateway API CRDs' schema and CEL rules validate them.
/// The kind-specific parts are in the partial files.
/// </summary>
internal sealed partial class GatewayRouteParser(SpecReader s)
{
    private const int MaxParentRefs = 32;
    private const int MaxHostnames = 16;
    private const int MaxRules = 16;
    private const int MaxMatchesPerRule = 64;
    private const int MaxMatchesPerRoute = 128;
    private const int MaxFilters = 16;
    private const int MaxBackendRefs = 16;
    private const int MaxHeaderEntries = 16;
    private const int MaxWeight = 1_000_000;

    private static readonly string[] ParentRefKeys = ["group", "kind", "namespace", "name", "sectionName", "port"];
    private static readonly string[] BackendRefKeys = ["group", "kind", "name", "namespace", "port"];
    private static readonly string[] WeightedBackendRefKeys = [.. BackendRefKeys, "weight", "filters"];
    private static readonly string[] HeaderMatchKeys = ["type", "name", "value"];
    private static readonly string[] HeaderModifierKeys = ["set", "add", "remove"];
    private static readonly string[] HeaderKeys = ["name", "value"];
    private static readonly string[] MirrorKeys = ["backendRef", "percent", "fraction"];
    private static readonly string[] FractionKeys = ["numerator", "denominator"];
    private static readonly string[] RedirectKeys = ["scheme", "hostname", "path", "port", "statusCode"];
    private static readonly string[] RewriteKeys = ["hostname", "path"];
    private static readonly string[] PathModifierKeys = ["type", "replaceFullPath", "replacePrefixMatch"];
    private static readonly string[] CorsKeys = ["allowOrigins", "allowCredentials", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge"];
    private static readonly string[] ExternalAuthKeys = ["protocol", "backendRef", "grpc", "http", "forwardBody"];
    private static readonly string[] SessionKeys = ["sessionName", "absoluteTimeout", "idleTimeout", "type", "cookieConfig", "cookie", "header"];

    private static readonly (string, ValueMatchType)[] ValueMatchTypes =
        [("Exact", ValueMatchType.Exact), ("RegularExpression", ValueMatchType.RegularExpression)];

    private static readonly (string, PathModifierType)[] PathModifierTypes =
        [("ReplaceFullPath", PathModifierType.ReplaceFullPath), ("ReplacePrefixMatch", PathModifierType.ReplacePrefixMatch)];

    private static readonly (string, int)[] RedirectCodes = [("301", 301), ("302", 302), ("303", 303), ("307", 307), ("308", 308)];

    private static readonly string[] Methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

    /// <summary>Filter type -> the field that carries its configuration.</summary>
    private static readonly (string Type, string Field)[] FilterFields =
    [
        ("RequestHeaderModifier", "requestHeaderModifier"), ("ResponseHeaderModifier", "responseHeaderModifier"),
        ("RequestMirror", "requestMirror"), ("RequestRedirect", "requestRedirect"), ("URLRewrite", "urlRewrite"),
        ("ExtensionRef", "extensionRef"), ("CORS", "cors"), ("ExternalAuth", "externalAuth"),
    ];

    /// <summary>Filters HTTPRoute allows (rules and backends).</summary>
    public static readonly string[] HttpFilterTypes =
        ["RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect", "URLRewrite", "ExtensionRef", "CORS", "ExternalAuth"];

    /// <summary>Filters GRPCRoute allows.</summary>
    public static readonly string[] GrpcFilterTypes = ["ResponseHeaderModifier", "RequestHeaderModifier", "RequestMirror", "ExtensionRef"];

    // ---- spec-level fields shared by both route kinds ----

    private static readonly string[] RouteSpecKeys = ["parentRefs", "hostnames", "rules", "useDefaultGateways"];

    /// <summary>The spec fields every route kind has; <paramref name="rules"/> reads the kind's own rules.</summary>
    private (ImmutableArray<ParentReference> ParentRefs, ImmutableArray<string> Hostnames, string? UseDefaultGateways) RouteSpec(
        YamlNode spec, string path, Action<YamlNode, string> rules)
    {
        ImmutableArray<ParentReference> parents = [];
        ImmutableArray<string> hostnames = [];
        string? useDefaultGateways = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(spec, path))
        {
            switch (key)
            {
                case "parentRefs":
                    parents = ParentRefs(v, p);
                    break;
                case "hostnames":
                    hostnames = Hostnames(v, p);
                    break;
                case "rules":
                    rules(v, p);
                    break;
                case "useDefaultGateways":
                    useDefaultGateways = s.OneOf(v, p, ["All", "None"]);
                    break;
                default:
                    s.Unknown(k, path, RouteSpecKeys);
                    break;
            }
        }
        return (parents, hostnames, useDefaultGateways);
    }

    private ImmutableArray<ParentReference> ParentRefs(YamlNode node, string path)
    {
        ImmutableArray<ParentReference> refs = s.List(node, path, MaxParentRefs, ParentRef);
        // CEL: several references to one parent must each name a section or port, and no two the same one.
        for (int i = 0; i < refs.Length; i++)
        {
            for (int j = i + 1; j < refs.Length; j++)
            {
                ParentReference a = refs[i], b = refs[j];
                if (a.Group != b.Group || a.Kind != b.Kind || a.Name != b.Name || (a.Namespace ?? "") != (b.Namespace ?? ""))
                {
                    continue;
                }
                if ((a.SectionName is null && a.Port is null) || (b.SectionName is null && b.Port is null))
                {
                    s.Error(node, Index(path, j), "sectionName or port must be specified when parentRefs includes 2 or more references to the same parent");
                }
                else if (a.SectionName == b.SectionName && a.Port == b.Port)
                {
                    s.Error(node, Index(path, j), $"duplicates parentRefs[{i}]: sectionName or port must be unique when parentRefs includes 2 or more references to the same parent");
                }
            }
        }
        return refs;
    }

    private ParentReference? ParentRef(YamlNode node, string path)
    {
        string group = ParentReference.GatewayGroup, kind = "Gateway";
        string? ns = null, name = null, section = null;
        int? port = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "group":
                    group = Group(v, p) ?? group;
                    break;
                case "kind":
                    kind = Kind(v, p) ?? kind;
                    break;
                case "namespace":
                    ns = Namespace(v, p);
                    break;
                case "name":
                    name = s.String(v, p, 1, 253);
                    break;
                case "sectionName":
                    section = s.String(v, p, 1, 253, KubeNames.DnsSubdomain(), KubeNames.DnsSubdomainHint);
                    break;
                case "port":
                    port = s.Int(v, p, 1, 65535);
                    break;
                default:
                    s.Unknown(k, path, ParentRefKeys);
                    break;
            }
        }
        if (!s.Require(node, path, "name", "the parent's name") || name is null)
        {
            return null;
        }
        return new ParentReference(group, kind, ns, name, section, port);
    }

    private ImmutableArray<string> Hostnames(YamlNode node, string path) =>
        s.Strings(node, path, MaxHostnames, (v, p) => s.String(v, p, 1, 253, KubeNames.Hostname(), KubeNames.HostnameHint));

    /// <summary>Checks the rule list's shared limits: total matches and unique rule names.</summary>
    public void CheckRules<T>(YamlNode node, string path, ImmutableArray<T> rules, Func<T, string?> name, Func<T, int> matchCount)
    {
        int total = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < rules.Length; i++)
        {
            total += matchCount(rules[i]);
            if (name(rules[i]) is { } n && !names.Add(n))
            {
                // Rule parsers return a rule for every entry, so the i-th rule is the i-th YAML entry.
                YamlNode at = node is YamlSequenceNode seq && i < seq.Children.Count ? seq.Children[i] : node;
                s.Error(at, Child(Index(path, i), "name"), $"rule name '{n}' must be unique within the route");
            }
        }
        if (total > MaxMatchesPerRoute)
        {
            s.Error(node, path, $"too many matches: {total} across all rules (at most {MaxMatchesPerRoute})");
        }
    }

    public static int RuleLimit => MaxRules;

    public static int MatchLimit => MaxMatchesPerRule;

    public string? RuleName(YamlNode node, string path) =>
        s.String(node, path, 1, 253, KubeNames.DnsSubdomain(), KubeNames.DnsSubdomainHint);

    // ---- references ----

    private string? Group(YamlNode v, string p) =>
        s.String(v, p, 0, 253) is { } g && (g.Length == 0 || s.Matches(g, KubeNames.DnsSubdomain(), v, p, KubeNames.DnsSubdomainHint)) ? g : null;

    private string? Kind(YamlNode v, string p) => s.String(v, p, 1, 63, KubeNames.Kind(), KubeNames.KindHint);

    private string? Namespace(YamlNode v, string p) => s.String(v, p, 1, 63, KubeNames.DnsLabel(), KubeNames.DnsLabelHint);

    /// <summary>The pieces of a BackendObjectReference, read field by field (they share an object with other fields).</summary>
    private sealed class RefParts
    {
        public string Group = "";
        public string Kind = "Service";
        public string? Name;
        public string? Namespace;
        public int? Port;
    }

    /// <summary>Reads <paramref name="key"/> into <paramref name="parts"/> if it is a BackendObjectReference field.</summary>
    private bool RefField(RefParts parts, string key, YamlNode v, string p)
    {
        switch (key)
        {
            case "group":
                parts.Group = Group(v, p) ?? parts.Group;
                return true;
            case "kind":
                parts.Kind = Kind(v, p) ?? parts.Kind;
                return true;
            case "name":
                parts.Name = s.String(v, p, 1, 253);
                return true;
            case "namespace":
                parts.Namespace = Namespace(v, p);
                return true;
            case "port":
                parts.Port = s.Int(v, p, 1, 65535);
                return true;
            default:
                return false;
        }
    }

    private BackendObjectReference? Finish(RefParts parts, YamlNode node, string path)
    {
        if (!s.Require(node, path, "name", "the backend's name") || parts.Name is null)
        {
            return null;
        }
        var backend = new BackendObjectReference(parts.Group, parts.Kind, parts.Name, parts.Namespace, parts.Port);
        if (backend.IsService && (!s.Require(node, path, "port", "a Service backend needs the service port") || backend.Port is null))
        {
            return null;
        }
        return backend;
    }

    private BackendObjectReference? BackendRef(YamlNode node, string path)
    {
        var parts = new RefParts();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            if (!RefField(parts, key, v, p))
            {
                s.Unknown(k, path, BackendRefKeys);
            }
        }
        return Finish(parts, node, path);
    }

    /// <summary>backendRefs of a rule: a reference plus weight and per-backend filters.</summary>
    public ImmutableArray<WeightedBackendRef> BackendRefs(YamlNode node, string path, IReadOnlyList<string> filterTypes) =>
        s.List(node, path, MaxBackendRefs, (n, p) => WeightedBackendRef(n, p, filterTypes));

    private WeightedBackendRef? WeightedBackendRef(YamlNode node, string path, IReadOnlyList<string> filterTypes)
    {
        var parts = new RefParts();
        int weight = 1;
        ImmutableArray<RouteFilter> filters = [];
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            if (RefField(parts, key, v, p))
            {
                continue;
            }
            switch (key)
            {
                case "weight":
                    weight = s.Int(v, p, 0, MaxWeight) ?? weight;
                    break;
                case "filters":
                    filters = Filters(v, p, filterTypes);
                    break;
                default:
                    s.Unknown(k, path, WeightedBackendRefKeys);
                    break;
            }
        }
        return Finish(parts, node, path) is { } backend ? new WeightedBackendRef(backend, weight, filters) : null;
    }

    // ---- matches ----

    /// <summary>
    /// Header matches (HTTPRoute and GRPCRoute). The API server refuses two entries with the same name; the Gateway
    /// API says names are case-insensitive and only the first of equivalent names counts, so a later entry that
    /// differs only in case is dropped with a warning.
    /// </summary>
    public ImmutableArray<HeaderMatch> HeaderMatches(YamlNode node, string path, bool checkValueShape)
    {
        ImmutableArray<HeaderMatch> all = s.List(node, path, MaxHeaderEntries, (n, p) => HeaderMatch(n, p, checkValueShape));
        return FirstOfEachName(all, m => m.Name, node, path, StringComparer.OrdinalIgnoreCase);
    }

    private HeaderMatch? HeaderMatch(YamlNode node, string path, bool checkValueShape)
    {
        (ValueMatchType type, string? name, string? value, YamlNode? valueNode) = NameValueMatch(node, path, HeaderMatchKeys,
            4096, checkValueShape);
        if (name is null || value is null)
        {
            return null;
        }
        SafeRegex? regex = type == ValueMatchType.RegularExpression ? s.CompileRegex(value, valueNode!, Child(path, "value")) : null;
        return new HeaderMatch(type, name, value, regex);
    }

    /// <summary>The common shape of header and query-parameter matches: type (default Exact), name, value.</summary>
    public (ValueMatchType Type, string? Name, string? Value, YamlNode? ValueNode) NameValueMatch(YamlNode node, string path,
        IReadOnlyList<string> keys, int maxValueLength, bool checkValueShape)
    {
        ValueMatchType type = ValueMatchType.Exact;
        string? name = null, value = null;
        YamlNode? valueNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "type":
                    type = s.Enum(v, p, ValueMatchTypes) ?? type;
                    break;
                case "name":
                    name = HeaderName(v, p);
                    break;
                case "value":
                    valueNode = v;
                    value = checkValueShape
                        ? s.String(v, p, 1, maxValueLength, KubeNames.HeaderValue(), KubeNames.HeaderValueHint)
                        : s.String(v, p, 1, maxValueLength);
                    break;
                default:
                    s.Unknown(k, path, keys);
                    break;
            }
        }
        s.Require(node, path, "name", "the name to match");
        s.Require(node, path, "value", "the value to match");
        return (type, name, value, valueNode);
    }

    public string? HeaderName(YamlNode v, string p) => s.String(v, p, 1, 256, KubeNames.HeaderName(), KubeNames.HeaderNameHint);

    /// <summary>
    /// Keeps the first entry of each name. An exact repeat is an error (the API server's list-map check); a repeat
    /// under <paramref name="equivalence"/> only (another case) is dropped with a warning, as the spec says.
    /// </summary>
    public ImmutableArray<T> FirstOfEachName<T>(ImmutableArray<T> items, Func<T, string> name, YamlNode node, string path,
        StringComparer equivalence)
    {
        var seen = new HashSet<string>(equivalence);
        var exact = new HashSet<string>(StringComparer.Ordinal);
        ImmutableArray<T>.Builder? kept = null;
        for (int i = 0; i < items.Length; i++)
        {
            string n = name(items[i]);
            if (!exact.Add(n))
            {
                s.Error(node, path, $"duplicate entry for name '{n}'");
            }
            else if (!seen.Add(n))
            {
                s.Warning(node, path, $"'{n}' repeats an earlier name (names compare case-insensitively); only the first counts");
            }
            else
            {
                kept?.Add(items[i]);
                continue;
            }
            if (kept is null)
            {
                kept = ImmutableArray.CreateBuilder<T>(items.Length);
                kept.AddRange(items, i);
            }
        }
        return kept?.ToImmutable() ?? items;
    }

    public string? Method(YamlNode v, string p) => s.OneOf(v, p, Methods);

    // ---- filters ----

    public ImmutableArray<RouteFilter> Filters(YamlNode node, string path, IReadOnlyList<string> allowedTypes)
    {
        ImmutableArray<RouteFilter> filters = s.List(node, path, MaxFilters, (n, p) => Filter(n, p, allowedTypes));
        // CEL: every filter type except RequestMirror and ExtensionRef at most once; redirect and rewrite exclusive.
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (RouteFilter f in filters)
        {
            counts[f.Type] = counts.GetValueOrDefault(f.Type) + 1;
        }
        foreach ((string type, int n) in counts)
        {
            if (n > 1 && type is not ("RequestMirror" or "ExtensionRef"))
            {
                s.Error(node, path, $"{type} filter cannot be repeated");
            }
        }
        if (counts.ContainsKey("RequestRedirect") && counts.ContainsKey("URLRewrite"))
        {
            s.Error(node, path, "may specify either a RequestRedirect or a URLRewrite filter, but not both");
        }
        return filters;
    }

    private RouteFilter? Filter(YamlNode node, string path, IReadOnlyList<string> allowedTypes)
    {
        string? type = null;
        bool typeSeen = false;
        var configs = new List<(string Field, YamlScalarNode Key, YamlNode Value, string Path)>();
        var known = new List<string>(allowedTypes.Count + 1) { "type" };
        foreach ((string t, string f) in FilterFields)
        {
            if (allowedTypes.Contains(t))
            {
                known.Add(f);
            }
        }
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            if (key == "type")
            {
                typeSeen = true;
                type = s.OneOf(v, p, allowedTypes);
            }
            else if (known.Contains(key))
            {
                configs.Add((key, k, v, p));
            }
            else
            {
                s.Unknown(k, path, known);
            }
        }
        if (!typeSeen)
        {
            s.Missing(node, path, "type", $"one of {string.Join(", ", allowedTypes)}");
            return null;
        }
        if (type is null)
        {
            return null;
        }
        string field = FieldOf(type);
        RouteFilter? filter = null;
        bool found = false;
        foreach ((string f, YamlScalarNode key, YamlNode v, string p) in configs)
        {
            if (f != field)
            {
                s.Error(key, p, $"must not be set when the filter type is {type}");
                continue;
            }
            found = true;
            filter = FilterConfig(type, v, p);
        }
        if (!found)
        {
            s.Missing(node, path, field, $"the configuration of the {type} filter");
        }
        return filter;
    }

    private static string FieldOf(string type)
    {
        foreach ((string t, string f) in FilterFields)
        {
            if (t == type)
            {
                return f;
            }
        }
        throw new ArgumentOutOfRangeException(nameof(type), type, "not a filter type");
    }

    private RouteFilter? FilterConfig(string type, YamlNode v, string p) => type switch
    {
        "RequestHeaderModifier" => HeaderModifier(v, p) is { } m ? new RequestHeaderModifierFilter(m) : null,
        "ResponseHeaderModifier" => HeaderModifier(v, p) is { } m ? new ResponseHeaderModifierFilter(m) : null,
        "RequestMirror" => Mirror(v, p),
        "RequestRedirect" => Redirect(v, p),
        "URLRewrite" => Rewrite(v, p),
        "ExtensionRef" => ExtensionRef(v, p),
        "CORS" => Cors(v, p),
        "ExternalAuth" => ExternalAuth(v, p),
        _ => null,
    };

    private HeaderModifier? HeaderModifier(YamlNode node, string path)
    {
        ImmutableArray<HttpHeader> set = [], add = [];
        ImmutableArray<string> remove = [];
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "set":
                    set = Headers(v, p);
                    break;
                case "add":
                    add = Headers(v, p);
                    break;
                case "remove":
                    remove = s.Strings(v, p, MaxHeaderEntries, (n, q) => s.String(n, q, 1, 256), unique: true);
                    break;
                default:
                    s.Unknown(k, path, HeaderModifierKeys);
                    break;
            }
        }
        return new HeaderModifier(set, add, remove);
    }

    private ImmutableArray<HttpHeader> Headers(YamlNode node, string path)
    {
        ImmutableArray<HttpHeader> all = s.List(node, path, MaxHeaderEntries, Header);
        return FirstOfEachName(all, h => h.Name, node, path, StringComparer.OrdinalIgnoreCase);
    }

    private HttpHeader? Header(YamlNode node, string path)
    {
        string? name = null, value = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "name":
                    name = HeaderName(v, p);
                    break;
                case "value":
                    value = s.String(v, p, 1, 4096, KubeNames.HeaderValue(), KubeNames.HeaderValueHint);
                    break;
                default:
                    s.Unknown(k, path, HeaderKeys);
                    break;
            }
        }
        s.Require(node, path, "name", "the header name");
        s.Require(node, path, "value", "the header value");
        return name is null || value is null ? null : new HttpHeader(name, value);
    }

    private RequestMirrorFilter? Mirror(YamlNode node, string path)
    {
        BackendObjectReference? backend = null;
        int? percent = null;
        MirrorFraction? fraction = null;
        YamlNode? fractionNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "backendRef":
                    backend = BackendRef(v, p);
                    break;
                case "percent":
                    percent = s.Int(v, p, 0, 100);
                    break;
                case "fraction":
                    fractionNode = v;
                    fraction = Fraction(v, p);
                    break;
                default:
                    s.Unknown(k, path, MirrorKeys);
                    break;
            }
        }
        s.Require(node, path, "backendRef", "where mirrored requests go");
        if (percent is not null && fractionNode is not null)
        {
            s.Error(fractionNode, Child(path, "fraction"), "only one of percent or fraction may be specified");
        }
        return backend is null ? null : new RequestMirrorFilter(backend, percent, fraction);
    }

    private MirrorFraction? Fraction(YamlNode node, string path)
    {
        int? numerator = null;
        int denominator = 100;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "numerator":
                    numerator = s.Int(v, p, 0);
                    break;
                case "denominator":
                    denominator = s.Int(v, p, 1) ?? denominator;
                    break;
                default:
                    s.Unknown(k, path, FractionKeys);
                    break;
            }
        }
        if (!s.Require(node, path, "numerator", "the mirrored share's numerator") || numerator is null)
        {
            return null;
        }
        if (numerator > denominator)
        {
            s.Error(node, Child(path, "numerator"), $"numerator ({numerator}) must be less than or equal to denominator ({denominator})");
            return null;
        }
        return new MirrorFraction(numerator.Value, denominator);
    }

    private RequestRedirectFilter? Redirect(YamlNode node, string path)
    {
        string? scheme = null, hostname = null;
        PathModifier? pathModifier = null;
        int? port = null;
        int status = 302;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "scheme":
                    scheme = s.OneOf(v, p, ["http", "https"]);
                    break;
                case "hostname":
                    hostname = PreciseHostname(v, p);
                    break;
                case "path":
                    pathModifier = PathModifier(v, p);
                    break;
                case "port":
                    port = s.Int(v, p, 1, 65535);
                    break;
                case "statusCode":
                    status = s.Int(v, p) is int code ? CheckRedirectCode(code, v, p) : status;
                    break;
                default:
                    s.Unknown(k, path, RedirectKeys);
                    break;
            }
        }
        return new RequestRedirectFilter(scheme, hostname, pathModifier, port, status);
    }

    private int CheckRedirectCode(int code, YamlNode v, string p)
    {
        foreach ((_, int allowed) in RedirectCodes)
        {
            if (code == allowed)
            {
                return code;
            }
        }
        s.Error(v, p, $"{code} is not one of: 301, 302, 303, 307, 308");
        return 302;
    }

    private string? PreciseHostname(YamlNode v, string p) =>
        s.String(v, p, 1, 253, KubeNames.DnsSubdomain(), KubeNames.PreciseHostnameHint);

    private UrlRewriteFilter? Rewrite(YamlNode node, string path)
    {
        string? hostname = null;
        PathModifier? pathModifier = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "hostname":
                    hostname = PreciseHostname(v, p);
                    break;
                case "path":
                    pathModifier = PathModifier(v, p);
                    break;
                default:
                    s.Unknown(k, path, RewriteKeys);
                    break;
            }
        }
        return new UrlRewriteFilter(hostname, pathModifier);
    }

    private PathModifier? PathModifier(YamlNode node, string path)
    {
        PathModifierType? type = null;
        string? full = null, prefix = null;
        YamlScalarNode? fullKey = null, prefixKey = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "type":
                    type = s.Enum(v, p, PathModifierTypes);
                    break;
                case "replaceFullPath":
                    fullKey = k;
                    full = s.String(v, p, 0, 1024);
                    break;
                case "replacePrefixMatch":
                    prefixKey = k;
                    prefix = s.String(v, p, 0, 1024);
                    break;
                default:
                    s.Unknown(k, path, PathModifierKeys);
                    break;
            }
        }
        if (!s.Require(node, path, "type", "ReplaceFullPath or ReplacePrefixMatch") || type is null)
        {
            return null;
        }
        bool ok = true;
        if (type == PathModifierType.ReplaceFullPath && prefixKey is not null)
        {
            s.Error(prefixKey, Child(path, "replacePrefixMatch"), "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set");
            ok = false;
        }
        if (type == PathModifierType.ReplacePrefixMatch && fullKey is not null)
        {
            s.Error(fullKey, Child(path, "replaceFullPath"), "type must be 'ReplaceFullPath' when replaceFullPath is set");
            ok = false;
        }
        string? value = type == PathModifierType.ReplaceFullPath ? full : prefix;
        if (value is null)
        {
            string field = type == PathModifierType.ReplaceFullPath ? "replaceFullPath" : "replacePrefixMatch";
            if ((type == PathModifierType.ReplaceFullPath ? fullKey : prefixKey) is null)
            {
                s.Missing(node, path, field, $"{field} must be specified when type is set to '{type}'");
            }
            return null;
        }
        return ok ? new PathModifier(type.Value, value) : null;
    }

    private ExtensionRefFilter? ExtensionRef(YamlNode node, string path)
    {
        (string group, string? kind, string? name, _, _) = s.ObjectRef(node, path, withNamespace: false);
        bool ok = s.Require(node, path, "group", "the extension's API group (\"\" for the core group)");
        ok &= s.Require(node, path, "kind", "the extension's kind");
        ok &= s.Require(node, path, "name", "the extension's name");
        return ok && kind is not null && name is not null ? new ExtensionRefFilter(new LocalObjectReference(group, kind, name)) : null;
    }

    private CorsFilter? Cors(YamlNode node, string path)
    {
        ImmutableArray<string> origins = [], methods = [], allowHeaders = [], exposeHeaders = [];
        bool? credentials = null;
        int maxAge = 5;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "allowOrigins":
                    origins = Wildcard(v, p, s.Strings(v, p, 64,
                        (n, q) => s.String(n, q, 1, 253, KubeNames.CorsOrigin(), "is not an origin (\"*\" or scheme://host[:port], host may start with \"*.\")"),
                        unique: true), "origins");
                    break;
                case "allowCredentials":
                    credentials = s.Bool(v, p);
                    break;
                case "allowMethods":
                    methods = Wildcard(v, p, s.Strings(v, p, 9, (n, q) => s.OneOf(n, q, [.. Methods, "*"]), unique: true), "methods");
                    break;
                case "allowHeaders":
                    allowHeaders = Wildcard(v, p, s.Strings(v, p, 64, HeaderName, unique: true), "headers");
                    break;
                case "exposeHeaders":
                    exposeHeaders = s.Strings(v, p, 64, HeaderName, unique: true);
                    break;
                case "maxAge":
                    maxAge = s.Int(v, p, 1) ?? maxAge;
                    break;
                default:
                    s.Unknown(k, path, CorsKeys);
                    break;
            }
        }
        return new CorsFilter(origins, credentials, methods, allowHeaders, exposeHeaders, maxAge);
    }

    private ImmutableArray<string> Wildcard(YamlNode node, string path, ImmutableArray<string> values, string what)
    {
        if (values.Length > 1 && values.Contains("*"))
        {
            s.Error(node, path, $"'*' cannot be listed alongside other {what}");
        }
        return values;
    }

    private ExternalAuthFilter? ExternalAuth(YamlNode node, string path)
    {
        ExternalAuthProtocol? protocol = null;
        BackendObjectReference? backend = null;
        YamlScalarNode? grpcKey = null, httpKey = null;
        string? httpPath = null;
        ImmutableArray<string> allowed = [], allowedResponse = [];
        int? bodyMax = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "protocol":
                    protocol = s.Enum(v, p, [("HTTP", ExternalAuthProtocol.Http), ("GRPC", ExternalAuthProtocol.Grpc)]);
                    break;
                case "backendRef":
                    backend = BackendRef(v, p);
                    break;
                case "grpc":
                    grpcKey = k;
                    s.OnlyField(v, p, "allowedHeaders", (gv, gp) => allowed = s.Strings(gv, gp, 64));
                    break;
                case "http":
                    httpKey = k;
                    foreach ((YamlScalarNode hk, string h, YamlNode hv, string hp) in s.Fields(v, p))
                    {
                        switch (h)
                        {
                            case "path":
                                httpPath = s.String(hv, hp, 0, 1024, KubeNames.PathChars(), "is not a valid path");
                                break;
                            case "allowedHeaders":
                                allowed = s.Strings(hv, hp, 64);
                                break;
                            case "allowedResponseHeaders":
                                allowedResponse = s.Strings(hv, hp, 64);
                                break;
                            default:
                                s.Unknown(hk, p, ["path", "allowedHeaders", "allowedResponseHeaders"]);
                                break;
                        }
                    }
                    break;
                case "forwardBody":
                    s.OnlyField(v, p, "maxSize", (fv, fp) => bodyMax = s.Int(fv, fp, 0));
                    break;
                default:
                    s.Unknown(k, path, ExternalAuthKeys);
                    break;
            }
        }
        s.Require(node, path, "protocol", "HTTP or GRPC");
        s.Require(node, path, "backendRef", "the authorization service");
        if (protocol == ExternalAuthProtocol.Http && grpcKey is not null)
        {
            s.Error(grpcKey, Child(path, "grpc"), "protocol must be 'GRPC' when grpc is set");
        }
        if (protocol == ExternalAuthProtocol.Grpc && httpKey is not null)
        {
            s.Error(httpKey, Child(path, "http"), "protocol must be 'HTTP' when http is set");
        }
        return protocol is null || backend is null
            ? null
            : new ExternalAuthFilter(protocol.Value, backend, httpPath, allowed, allowedResponse, bodyMax);
    }

    // ---- session persistence ----

    public SessionPersistence? SessionPersistence(YamlNode node, string path)
    {
        SessionPersistenceType type = SessionPersistenceType.Cookie;
        string? name = null, cookiePath = null;
        TimeSpan? absolute = null, idle = null;
        CookieLifetimeType? lifetime = null;
        YamlScalarNode? cookieKey = null, headerKey = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "sessionName":
                    name = s.String(v, p, 0, 128);
                    break;
                case "absoluteTimeout":
                    absolute = s.GatewayDuration(v, p);
                    break;
                case "idleTimeout":
                    idle = s.GatewayDuration(v, p);
                    break;
                case "type":
                    type = s.Enum(v, p, [("Cookie", SessionPersistenceType.Cookie), ("Header", SessionPersistenceType.Header)]) ?? type;
                    break;
                case "cookieConfig":
                case "cookie":
                    cookieKey = k;
                    foreach ((YamlScalarNode ck, string c, YamlNode cv, string cp) in s.Fields(v, p))
                    {
                        switch (c)
                        {
                            case "lifetimeType":
                                lifetime = s.Enum(cv, cp, [("Session", CookieLifetimeType.Session), ("Permanent", CookieLifetimeType.Permanent)]);
                                break;
                            case "name" when key == "cookie":
                                name = HeaderName(cv, cp);
                                break;
                            case "path" when key == "cookie":
                                cookiePath = s.String(cv, cp, 0, 1024);
                                break;
                            default:
                                s.Unknown(ck, p, key == "cookie" ? ["lifetimeType", "name", "path"] : ["lifetimeType"]);
                                break;
                        }
                    }
                    break;
                case "header":
                    headerKey = k;
                    s.OnlyField(v, p, "name", (hv, hp) => name = HeaderName(hv, hp));
                    break;
                default:
                    s.Unknown(k, path, SessionKeys);
                    break;
            }
        }
        if (cookieKey is not null && type != SessionPersistenceType.Cookie)
        {
            s.Error(cookieKey, Child(path, cookieKey.Value ?? "cookie"), "must not be set unless type is Cookie");
        }
        if (headerKey is not null && type != SessionPersistenceType.Header)
        {
            s.Error(headerKey, Child(path, "header"), "must not be set unless type is Header");
        }
        if (lifetime == CookieLifetimeType.Permanent && absolute is null)
        {
            s.Missing(node, path, "absoluteTimeout", "absoluteTimeout must be specified when the cookie lifetimeType is Permanent");
        }
        return new SessionPersistence(type, name, absolute, idle, lifetime, cookiePath);
    }
}
