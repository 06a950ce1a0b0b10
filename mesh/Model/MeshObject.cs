namespace Ambient.Mesh.Model;

/// <summary>
/// A mesh resource other than the three L4 kinds ztunnel's local config has (workloads, services, L4 policies):
/// waypoints, peer authentication, and the L7 resources the waypoint enforces (routes, destination rules,
/// virtual services, L7 authorization, rate limits, telemetry). Immutable; a change replaces the object whole.
/// </summary>
public abstract record MeshObject
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    /// <summary>The resource kind as users write it ("HTTPRoute", "DestinationRule", ...).</summary>
    public abstract string Kind { get; }

    /// <summary>Unique within a mesh: kind, namespace and name.</summary>
    public string Key => $"{Kind}/{Namespace}/{Name}";
}
