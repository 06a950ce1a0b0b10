using System.Collections.Immutable;

namespace Ambient.Mesh.Model.L7;

/// <summary>
/// Linkerd's policy.linkerd.io Server: a port on the pods its <c>podSelector</c> selects, which policies
/// (here HTTPLocalRateLimitPolicy) can target. The port is the container port's number (a named port is refused
/// when read: the model keeps no container port names).
/// </summary>
public sealed record LinkerdServer : MeshObject
{
    public override string Kind => "Server";

    /// <summary><c>podSelector.matchLabels</c>: every label must match (empty selects every pod of the namespace).</summary>
    public ImmutableDictionary<string, string> PodSelector { get; init; } = ImmutableDictionary<string, string>.Empty;

    /// <summary><c>port</c>: the container port.</summary>
    public int? PortNumber { get; init; }

    /// <summary>Whether the server covers <paramref name="workload"/> in the server's namespace.</summary>
    public bool Selects(Workload workload)
    {
        if (workload.Namespace != Namespace)
        {
            return false;
        }
        foreach (var (key, value) in PodSelector)
        {
            if (!workload.Labels.TryGetValue(key, out var v) || v != value)
            {
                return false;
            }
        }
        return true;
    }
}
