using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes.L7;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Kubernetes;

/// <summary>
/// One run of <see cref="KubeTranslator.Translate"/>: the objects sorted by kind, then translated in dependency
/// order (namespaces, nodes and waypoints first, because labels on the others refer to them; services and
/// policies before pods, because a pod's workload lists the services and policies that select it). The facets
/// live in the partial files by kind.
/// </summary>
internal sealed partial class Translation(KubeTranslatorOptions options, TranslatorMemory memory)
{
    private const string CoreGroup = "";
    private const string DiscoveryGroup = "discovery.k8s.io";
    private const string NetworkingIstio = "networking.istio.io";
    private const string SecurityIstio = "security.istio.io";
    private const string GatewayApi = "gateway.networking.k8s.io";

    private readonly List<ConfigError> _errors = [];
    private readonly List<ConfigError> _warnings = [];
    private readonly SortedSet<string> _ignored = new(StringComparer.Ordinal);

    private readonly Dictionary<string, ImmutableDictionary<string, string>> _namespaceLabels = new(StringComparer.Ordinal);
    private readonly List<KubeObject> _namespaces = [];
    private readonly List<KubeObject> _nodes = [];
    private readonly List<KubeObject> _pods = [];
    private readonly List<KubeObject> _services = [];
    private readonly List<KubeObject> _slices = [];
    private readonly List<KubeObject> _serviceEntries = [];
    private readonly List<KubeObject> _workloadEntries = [];
    private readonly List<KubeObject> _authorizationPolicies = [];
    private readonly List<KubeObject> _peerAuthentications = [];
    private readonly List<KubeObject> _gateways = [];
    private readonly List<KubeObject> _gatewayClasses = [];
    private readonly List<KubeObject> _l7 = [];

    private readonly ImmutableArray<Workload>.Builder _workloadsOut = ImmutableArray.CreateBuilder<Workload>();
    private readonly ImmutableArray<Service>.Builder _servicesOut = ImmutableArray.CreateBuilder<Service>();
    private readonly ImmutableArray<AuthorizationPolicy>.Builder _policiesOut = ImmutableArray.CreateBuilder<AuthorizationPolicy>();
    private readonly ImmutableArray<MeshObject>.Builder _objectsOut = ImmutableArray.CreateBuilder<MeshObject>();

    public TranslationResult Run(IEnumerable<KubeObject> objects)
    {
        Classify(objects);
        TranslateNamespaces();
        TranslateNodes();
        TranslateGateways();
        TranslateAuthorizationPolicies();
        TranslatePeerAuthentications();
        TranslateServices();
        TranslateServiceEntries();
        ParsePods();
        TranslateEndpointSlices();
        BuildPodWorkloads();
        TranslateWorkloadEntries();
        TranslateServiceEntryEndpoints();
        TranslateL7();

        var resources = new MeshResources
        {
            Workloads = _workloadsOut.ToImmutable(),
            Services = _servicesOut.ToImmutable(),
            Policies = _policiesOut.ToImmutable(),
            Objects = _objectsOut.ToImmutable(),
        };
        return new TranslationResult(resources, [.. _errors], [.. _warnings]) { IgnoredKinds = [.. _ignored] };
    }

    private void Classify(IEnumerable<KubeObject> objects)
    {
        foreach (KubeObject o in objects)
        {
            List<KubeObject>? into = (o.Group, o.Kind) switch
            {
                (CoreGroup, "Namespace") => _namespaces,
                (CoreGroup, "Node") => _nodes,
                (CoreGroup, "Pod") => _pods,
                (CoreGroup, "Service") => _services,
                (DiscoveryGroup, "EndpointSlice") => _slices,
                (NetworkingIstio, "ServiceEntry") => _serviceEntries,
                (NetworkingIstio, "WorkloadEntry") => _workloadEntries,
                (SecurityIstio, "AuthorizationPolicy") => _authorizationPolicies,
                (SecurityIstio, "PeerAuthentication") => _peerAuthentications,
                (GatewayApi, "Gateway") => _gateways,
                (GatewayApi, "GatewayClass") => _gatewayClasses,
                _ => L7Kinds.Handles(o.Group, o.Kind) ? _l7 : null,
            };
            if (into is null)
            {
                _ignored.Add(o.Group.Length == 0 ? o.Kind : $"{o.Kind}.{o.Group}");
            }
            else
            {
                into.Add(o);
            }
        }
    }

    private void TranslateL7()
    {
        foreach (KubeObject o in _l7)
        {
            if (ParseOnce(o, static (o, r) => L7Kinds.Parse(o, r)) is { } l7)
            {
                _objectsOut.Add(l7);
            }
        }
    }

    // ---- namespaces and nodes ----

    private void TranslateNamespaces()
    {
        foreach (KubeObject o in _namespaces)
        {
            // A Namespace is cluster-scoped: its own name is the namespace its labels govern.
            _namespaceLabels[o.Name] = o.Labels;
        }
    }

    private ImmutableDictionary<string, string> NamespaceLabels(string ns) =>
        _namespaceLabels.GetValueOrDefault(ns) ?? ImmutableDictionary<string, string>.Empty;

    private readonly Dictionary<string, Locality> _nodeLocality = new(StringComparer.Ordinal);

    private void TranslateNodes()
    {
        foreach (KubeObject o in _nodes)
        {
            string region = o.Labels.GetValueOrDefault(KubeLabels.Region) ?? "";
            string zone = o.Labels.GetValueOrDefault(KubeLabels.Zone) ?? "";
            string subzone = o.Labels.GetValueOrDefault(KubeLabels.Subzone) ?? "";
            if (region.Length + zone.Length + subzone.Length > 0)
            {
                _nodeLocality[o.Name] = new Locality(region, zone, subzone);
            }
        }
    }

    // ---- plumbing: one reader per object, errors named after the object ----

    /// <summary>The namespace of a namespaced object; a manifest without one means "default", as kubectl apply does.</summary>
    private static string NamespaceOf(KubeObject o) => o.Namespace.Length > 0 ? o.Namespace : "default";

    private static string Describe(KubeObject o) => $"{o.Kind} {NamespaceOf(o)}/{o.Name}";

    /// <summary>
    /// Runs <paramref name="parse"/> on one object with its own reader and reports what it found, prefixed with the
    /// object's name. Returns null when the object has errors: it is left out, the others still translate.
    /// </summary>
    private T? Parse<T>(KubeObject o, Func<KubeObject, YamlConfigReader, T?> parse)
        where T : class
    {
        var r = new YamlConfigReader(o.File ?? "kubernetes");
        T? result;
        try
        {
            result = parse(o, r);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A translator bug must not drop the whole mesh: report it against the object like bad input.
            r.Error(o.Body, "", $"internal error while translating: {e.GetType().Name}: {e.Message}");
            result = null;
        }
        if (r.HasErrors || !r.Warnings.IsEmpty)
        {
            foreach (ConfigError e in r.Errors)
            {
                _errors.Add(Named(o, e));
            }
            foreach (ConfigError w in r.Warnings)
            {
                _warnings.Add(Named(o, w));
            }
        }
        return r.HasErrors ? null : result;
    }

    /// <summary>
    /// <see cref="Parse"/> for a parse that reads nothing but the object itself: done once per object instance and
    /// remembered (with its messages) for the next run, which re-reads only replaced objects.
    /// </summary>
    private T? ParseOnce<T>(KubeObject o, Func<KubeObject, YamlConfigReader, T?> parse)
        where T : class
    {
        return Once(memory.Parsed, o, o => Parse(o, parse));
    }

    /// <summary>
    /// <paramref name="make"/> once per <paramref name="key"/> instance, remembered with the errors and warnings it
    /// reported, which later runs report again (a problem is not fixed by asking twice).
    /// </summary>
    private T? Once<TKey, T>(ConditionalWeakTable<TKey, ParsedObject> table, TKey key, Func<TKey, T?> make)
        where TKey : class
        where T : class
    {
        if (table.TryGetValue(key, out ParsedObject? entry))
        {
            _errors.AddRange(entry.Errors);
            _warnings.AddRange(entry.Warnings);
            return entry.Value as T;
        }
        int errors = _errors.Count, warnings = _warnings.Count;
        T? value = make(key);
        table.AddOrUpdate(key, new ParsedObject(value, [.. _errors.Skip(errors)], [.. _warnings.Skip(warnings)]));
        return value;
    }

    private static ConfigError Named(KubeObject o, ConfigError e)
    {
        string field = e.Field.Length == 0 ? Describe(o) : $"{Describe(o)}: {e.Field}";
        // An object from the API server has no file; the line numbers of its converted JSON mean nothing to a user.
        return o.File is null ? new ConfigError("kubernetes", 0, 0, field, e.Message) : e with { Field = field };
    }

    private void Warn(KubeObject o, YamlNode? node, string field, string message)
    {
        var r = new YamlConfigReader(o.File ?? "kubernetes");
        r.Warning(node ?? o.Body, field, message);
        _warnings.Add(Named(o, r.Warnings[0]));
    }

    private void Error(KubeObject o, YamlNode? node, string field, string message)
    {
        var r = new YamlConfigReader(o.File ?? "kubernetes");
        r.Error(node ?? o.Body, field, message);
        _errors.Add(Named(o, r.Errors[0]));
    }

    /// <summary><c>selector.matchLabels</c> (or a bare label map when <paramref name="bare"/>: a Service's spec.selector).</summary>
    private static ImmutableDictionary<string, string>? Selector(YamlConfigReader r, YamlMappingNode? parent, string key, string path, bool bare)
    {
        if (KubeYaml.Get(parent, key) is not { } node)
        {
            return null;
        }
        string field = YamlConfigReader.Child(path, key);
        if (bare)
        {
            return KubeYaml.StringMap(r, node, field);
        }
        YamlMappingNode? sel = r.Mapping(node, field);
        if (sel is null)
        {
            return null;
        }
        foreach ((YamlScalarNode k, string name, _) in r.Entries(sel, field))
        {
            if (name is not "matchLabels")
            {
                // Istio's WorkloadSelector has only matchLabels; a matchExpressions here would silently select
                // everything, which for a policy is the opposite of what was meant.
                r.Error(k, YamlConfigReader.Child(field, name), $"unknown field '{name}'; Istio selectors have only matchLabels");
            }
        }
        return KubeYaml.Get(sel, "matchLabels") is { } ml
            ? KubeYaml.StringMap(r, ml, YamlConfigReader.Child(field, "matchLabels"))
            : ImmutableDictionary<string, string>.Empty;
    }

    /// <summary>"*" globs of Istio's string fields as ztunnel string matches.</summary>
    private static StringMatch Glob(string v) => v switch
    {
        "*" => new StringMatch(StringMatchKind.Presence, ""),
        _ when v.StartsWith('*') => new StringMatch(StringMatchKind.Suffix, v[1..]),
        _ when v.EndsWith('*') => new StringMatch(StringMatchKind.Prefix, v[..^1]),
        _ => new StringMatch(StringMatchKind.Exact, v),
    };
}
