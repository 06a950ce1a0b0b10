using System.Collections.Frozen;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Kubernetes.L7;

/// <summary>
/// The L7 kinds the waypoint enforces (HTTPRoute, GRPCRoute, VirtualService, DestinationRule,
/// HTTPLocalRateLimitPolicy, Telemetry): which they are, and how one object becomes a typed, validated,
/// immutable <see cref="MeshObject"/>. The translator calls this for every object it does not translate itself.
/// </summary>
internal static class L7Kinds
{
    /// <summary>How one kind is read: the API versions users write for it, and the parser of its spec.</summary>
    private sealed record KindInfo(string[] Versions, bool SpecRequired, Func<SpecReader, YamlNode, string, string, string, MeshObject?> Parse);

    // Istio serves its networking kinds at three versions with one schema (v1alpha3 is still the proto package).
    private static readonly string[] IstioNetworkingVersions = ["v1", "v1beta1", "v1alpha3"];

    private static readonly FrozenDictionary<(string Group, string Kind), KindInfo> Kinds =
        new Dictionary<(string, string), KindInfo>
        {
            // HTTPRoute was v1alpha2 before it went GA; the three versions share the schema this parser reads.
            [("gateway.networking.k8s.io", "HTTPRoute")] = new(["v1", "v1beta1", "v1alpha2"], true,
                (s, spec, path, ns, name) => new GatewayRouteParser(s).HttpRoute(spec, path, ns, name)),
            // GRPCRoute went from v1alpha2 (experimental) straight to v1; it never had a v1beta1.
            [("gateway.networking.k8s.io", "GRPCRoute")] = new(["v1", "v1alpha2"], true,
                (s, spec, path, ns, name) => new GatewayRouteParser(s).GrpcRoute(spec, path, ns, name)),
            [("networking.istio.io", "DestinationRule")] = new(IstioNetworkingVersions, true,
                (s, spec, path, ns, name) => new IstioParser(s).DestinationRule(spec, path, ns, name)),
            [("networking.istio.io", "VirtualService")] = new(IstioNetworkingVersions, true,
                (s, spec, path, ns, name) => new IstioParser(s).VirtualService(spec, path, ns, name)),
            // Telemetry's spec is all optional (an empty one is valid), so a missing spec is not an error.
            [("telemetry.istio.io", "Telemetry")] = new(["v1", "v1alpha1"], false,
                (s, spec, path, ns, name) => new IstioParser(s).Telemetry(spec, path, ns, name)),
            [("policy.linkerd.io", "HTTPLocalRateLimitPolicy")] = new(["v1alpha1"], true,
                (s, spec, path, ns, name) => new RateLimitPolicyParser(s).Parse(spec, path, ns, name)),
            // The Server a rate-limit policy may target (v1beta3 is current; the older versions share these fields).
            [("policy.linkerd.io", "Server")] = new(["v1beta3", "v1beta2", "v1beta1"], true,
                (s, spec, path, ns, name) => new LinkerdServerParser(s).Parse(spec, path, ns, name)),
        }.ToFrozenDictionary();

    /// <summary>True for a group/kind this class parses.</summary>
    public static bool Handles(string group, string kind) => Kinds.ContainsKey((group, kind));

    /// <summary>
    /// Parses one object of a kind <see cref="Handles"/> accepts. Every problem goes to <paramref name="errors"/> with
    /// its field path (the caller prefixes the object's name); null when the object has errors.
    /// </summary>
    public static MeshObject? Parse(KubeObject obj, YamlConfigReader errors)
    {
        if (!Kinds.TryGetValue((obj.Group, obj.Kind), out KindInfo? info))
        {
            errors.Error(obj.Body, "kind", $"{obj.Kind}.{obj.Group} is not an L7 kind");
            return null;
        }
        if (Array.IndexOf(info.Versions, obj.Version) < 0)
        {
            errors.Error(Field(obj.Body, "apiVersion") ?? obj.Body, "apiVersion",
                $"'{obj.ApiVersion}' is not a version of {obj.Kind}; use {string.Join(" or ", Array.ConvertAll(info.Versions, v => $"{obj.Group}/{v}"))}");
            return null;
        }
        int before = errors.ErrorCount;
        YamlNode? spec = Field(obj.Body, "spec");
        if (spec is null || YamlConfigReader.IsNull(spec))
        {
            if (info.SpecRequired)
            {
                errors.Error(obj.Body, "spec", $"required: a {obj.Kind} needs a spec");
                return null;
            }
            spec = new YamlMappingNode();
        }
        MeshObject? result = info.Parse(new SpecReader(errors), spec, "spec", obj.Namespace, obj.Name);
        return errors.ErrorCount == before ? result : null;
    }

    private static YamlNode? Field(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out YamlNode? v) ? v : null;
}
