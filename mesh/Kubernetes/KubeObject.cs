using System.Collections.Immutable;
using Ambient.Mesh.Kubernetes.Api;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Kubernetes;

/// <summary>
/// One Kubernetes object as a source read it, before translation into the mesh model: from a manifest file
/// (with its file, so errors can name the line) or from the API server (JSON turned into the same node tree).
/// The file source and the API source both hand these to one translator, so a Pod means the same thing
/// whichever way it arrived.
/// </summary>
/// <remarks>
/// An object from the API server is held as its compact JSON, not as a node tree: the watcher keeps every pod of the
/// cluster, and a YamlDotNet tree of a pod costs about ten times its JSON (perf/README.md, "KubeObject memory"). The
/// tree is built when <see cref="Body"/> is read and held only weakly: the translator reads an object once per
/// instance and remembers what it said, so a tree is rarely built twice and never kept for the object's life.
/// A manifest object keeps its tree, whose nodes carry the line numbers its errors report.
/// </remarks>
public sealed record KubeObject
{
    private readonly YamlMappingNode? _tree;
    private readonly byte[]? _json;
    private readonly WeakReference<YamlMappingNode>? _built;

    /// <param name="apiVersion">"v1", "networking.istio.io/v1", ...</param>
    /// <param name="kind">"Pod", "Service", "HTTPRoute", ...</param>
    /// <param name="namespace">metadata.namespace; "" for cluster-scoped kinds (Namespace) or when a manifest leaves it out.</param>
    /// <param name="name">metadata.name</param>
    /// <param name="body">The whole object (apiVersion, kind, metadata, spec, status).</param>
    /// <param name="file">The manifest file it came from, or null for an object from the API server.</param>
    public KubeObject(string apiVersion, string kind, string @namespace, string name, YamlMappingNode body, string? file)
    {
        ApiVersion = apiVersion;
        Kind = kind;
        Namespace = @namespace;
        Name = name;
        File = file;
        _tree = body;
    }

    private KubeObject(string apiVersion, string kind, string @namespace, string name, byte[] json)
    {
        ApiVersion = apiVersion;
        Kind = kind;
        Namespace = @namespace;
        Name = name;
        _json = json;
        _built = new WeakReference<YamlMappingNode>(null!);
    }

    /// <summary>An object kept as the compact JSON of its whole body (see the remarks).</summary>
    internal static KubeObject FromJson(string apiVersion, string kind, string @namespace, string name, byte[] json) =>
        new(apiVersion, kind, @namespace, name, json);

    public string ApiVersion { get; init; }

    public string Kind { get; init; }

    public string Namespace { get; init; }

    public string Name { get; init; }

    public string? File { get; init; }

    /// <summary>The whole object (apiVersion, kind, metadata, spec, status). Never mutate it.</summary>
    public YamlMappingNode Body
    {
        get
        {
            if (_tree is not null)
            {
                return _tree;
            }
            if (_built!.TryGetTarget(out YamlMappingNode? tree))
            {
                return tree;
            }
            tree = KubeJson.ParseObject(_json);
            _built.SetTarget(tree);
            return tree;
        }
    }

    /// <summary>Bytes held for the body: the JSON an API object is kept as; 0 for a manifest object (its tree is the file's).</summary>
    public int RetainedJsonBytes => _json?.Length ?? 0;

    /// <summary>The API group: "" for the core group ("v1"), else the part of apiVersion before the slash.</summary>
    public string Group => ApiVersion.IndexOf('/') is int i and >= 0 ? ApiVersion[..i] : "";

    /// <summary>The version part of apiVersion ("v1", "v1beta1", ...).</summary>
    public string Version => ApiVersion.IndexOf('/') is int i and >= 0 ? ApiVersion[(i + 1)..] : ApiVersion;

    public string Uid { get; init; } = "";

    public string ResourceVersion { get; init; } = "";

    public ImmutableDictionary<string, string> Labels { get; init; } = ImmutableDictionary<string, string>.Empty;

    public ImmutableDictionary<string, string> Annotations { get; init; } = ImmutableDictionary<string, string>.Empty;

    /// <summary>The identity of the object within its source: kind, group, namespace and name.</summary>
    public KubeObjectKey Key => new(Group, Kind, Namespace, Name);

    /// <summary>How messages name the object: <c>Kind ns/name</c> (or <c>Kind name</c> when cluster-scoped).</summary>
    public string Describe() => Namespace.Length == 0 ? $"{Kind} {Name}" : $"{Kind} {Namespace}/{Name}";

    /// <summary>Where it came from, for messages and /config_dump: the file, or "kubernetes".</summary>
    public string Origin => File ?? "kubernetes";
}

/// <summary>Identifies an object of a source: the group matters (an Istio Gateway is not a Gateway API Gateway).</summary>
public readonly record struct KubeObjectKey(string Group, string Kind, string Namespace, string Name)
{
    public override string ToString() => Namespace.Length == 0 ? $"{Kind}.{Group} {Name}" : $"{Kind}.{Group} {Namespace}/{Name}";
}
