using System.Collections.Immutable;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Kubernetes;

/// <summary>
/// One Kubernetes object as a source read it, before translation into the mesh model: from a manifest file
/// (with its file, so errors can name the line) or from the API server (JSON turned into the same node tree).
/// The file source and the API source both hand these to one translator, so a Pod means the same thing
/// whichever way it arrived.
/// </summary>
/// <param name="ApiVersion">"v1", "networking.istio.io/v1", ...</param>
/// <param name="Kind">"Pod", "Service", "HTTPRoute", ...</param>
/// <param name="Namespace">metadata.namespace; "" for cluster-scoped kinds (Namespace) or when a manifest leaves it out.</param>
/// <param name="Name">metadata.name</param>
/// <param name="Body">The whole object (apiVersion, kind, metadata, spec, status).</param>
/// <param name="File">The manifest file it came from, or null for an object from the API server.</param>
public sealed record KubeObject(string ApiVersion, string Kind, string Namespace, string Name, YamlMappingNode Body, string? File)
{
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
