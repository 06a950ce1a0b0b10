using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;

namespace Ambient.Mesh.Kubernetes;

/// <summary>Settings of the Kubernetes translation (Istio's mesh config and istiod flags of the same meaning).</summary>
public sealed record KubeTranslatorOptions
{
    public static readonly KubeTranslatorOptions Default = new();

    /// <summary>Trust domain of SPIFFE identities the translator writes (waypoint identities).</summary>
    public string TrustDomain { get; init; } = "cluster.local";

    /// <summary>Istio's CLUSTER_ID: the first part of a workload uid (<c>Kubernetes//Pod/ns/name</c>).</summary>
    public string ClusterId { get; init; } = "Kubernetes";

    /// <summary>DNS suffix of service hostnames: <c>&lt;name&gt;.&lt;ns&gt;.svc.&lt;suffix&gt;</c>.</summary>
    public string DomainSuffix { get; init; } = "cluster.local";

    /// <summary>Istio's root namespace: AuthorizationPolicy and PeerAuthentication without a selector there are mesh-wide.</summary>
    public string RootNamespace { get; init; } = "istio-system";
}

/// <summary>The mesh model translated from a set of Kubernetes objects, and the problems found.</summary>
/// <param name="Resources">Workloads, services, L4 policies (ztunnel) and the other mesh objects (waypoints, Istio policies, L7 kinds).</param>
/// <param name="Errors">One per problem, naming the object (<c>Kind ns/name: field</c>) and, for files, the file and line. An object with an error is left out.</param>
/// <param name="Warnings">Problems that did not stop an object (a label naming a waypoint that does not exist, an L7 rule ztunnel drops, ...).</param>
public sealed record TranslationResult(MeshResources Resources, ImmutableArray<ConfigError> Errors, ImmutableArray<ConfigError> Warnings)
{
    /// <summary>Kinds nobody translates ("Deployment.apps", "ConfigMap"), each once, for one debug line.</summary>
    public ImmutableArray<string> IgnoredKinds { get; init; } = [];
}

/// <summary>
/// The one translation from Kubernetes objects (Namespaces, Pods, Services, EndpointSlices, Nodes, Istio's
/// ServiceEntry, WorkloadEntry, AuthorizationPolicy, PeerAuthentication, Gateway API waypoints and the L7 kinds) to
/// the mesh model, shared by the manifest-file source and the Kubernetes API source, with Istio's documented
/// semantics (see <c>mesh/Kubernetes/README.md</c>).
/// </summary>
/// <remarks>
/// Thread-safe; <see cref="Translate"/> reads the whole object set each time (the API source calls it after every
/// batch of watch events) and its result depends only on that set. It is linear in the number of objects:
/// services and policies are found through label indexes, never by scanning every selector for every pod. What
/// one object says on its own (a Pod's addresses and ports, a policy's rules) is parsed once per
/// <see cref="KubeObject"/> instance and remembered while the instance lives, so a run after a watch event
/// re-reads only the objects that changed; sources must therefore replace an object, never mutate its
/// <see cref="KubeObject.Body"/>.
/// </remarks>
public sealed class KubeTranslator(KubeTranslatorOptions? options = null)
{
    private readonly TranslatorMemory _memory = new();

    public KubeTranslatorOptions Options { get; } = options ?? KubeTranslatorOptions.Default;

    /// <summary>
    /// Translates the whole object set. A resource equal to the one the previous run produced is that same instance,
    /// so a caller can find what changed by reference.
    /// </summary>
    public TranslationResult Translate(IEnumerable<KubeObject> objects)
    {
        StableOutput previous = Volatile.Read(ref _memory.Previous);
        TranslationResult result = new Translation(Options, _memory).Run(objects);
        result = result with { Resources = previous.Reuse(result.Resources) };
        Volatile.Write(ref _memory.Previous, new StableOutput(result.Resources));
        return result;
    }
}

/// <summary>What a translator remembers between runs; every part only saves work, none changes a result.</summary>
internal sealed class TranslatorMemory
{
    /// <summary>What each object instance said on its own (see <c>Translation.ParseOnce</c>).</summary>
    public ConditionalWeakTable<KubeObject, ParsedObject> Parsed { get; } = new();

    /// <summary>The L4 policy made of each parsed Istio policy, with its warnings.</summary>
    public ConditionalWeakTable<IstioAuthorizationPolicy, ParsedObject> ZtunnelPolicies { get; } = new();

    public StableOutput Previous = StableOutput.Empty;
}

/// <summary>What parsing one object on its own gave (null when it had errors or nothing for the mesh), with its messages.</summary>
internal sealed record ParsedObject(object? Value, ImmutableArray<ConfigError> Errors, ImmutableArray<ConfigError> Warnings);
