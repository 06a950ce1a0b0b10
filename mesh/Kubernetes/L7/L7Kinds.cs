using Ambient.Mesh.Config;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.Kubernetes.L7;

/// <summary>
/// The L7 kinds the waypoint enforces (HTTPRoute, GRPCRoute, VirtualService, DestinationRule,
/// HTTPLocalRateLimitPolicy, Telemetry): which they are, and how one object becomes a typed, validated,
/// immutable <see cref="MeshObject"/>. The translator calls this for every object it does not translate itself.
/// </summary>
internal static class L7Kinds
{
    /// <summary>True for a group/kind this class parses.</summary>
    public static bool Handles(string group, string kind) => false;

    /// <summary>
    /// Parses one object of a kind <see cref="Handles"/> accepts. Every problem goes to <paramref name="errors"/> with
    /// its field path (the caller prefixes the object's name); null when the object has errors.
    /// </summary>
    public static MeshObject? Parse(KubeObject obj, YamlConfigReader errors) => null;
}
