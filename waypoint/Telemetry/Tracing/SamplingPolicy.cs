using Ambient.Mesh.Model.L7;
using Ambient.Mesh.State;
using Ambient.Waypoint.Hbone;

namespace Ambient.Waypoint.Telemetry.Tracing;

/// <summary>
/// The sampling percentage for traces that start at this waypoint, from Istio's Telemetry resources
/// (telemetry.istio.io/v1 <c>tracing[0].randomSamplingPercentage</c>) with Istio's precedence: one with
/// <c>targetRefs</c> naming this waypoint's Gateway, over one for the Gateway's whole namespace (no selector, no
/// targetRefs), over one for the mesh (the root namespace, <c>istio-system</c>). Each level overrides only what it
/// sets. Among several at one level, the first by name wins (Istio takes the oldest; names are stable across
/// sources). Worked out once per mesh snapshot, so a changed resource applies to the next request.
/// </summary>
internal sealed class SamplingPolicy(WaypointIdentity identity, string rootNamespace = "istio-system")
{
    private sealed record Decision(MeshSnapshot Snapshot, double? Percentage, string? Source);

    private Decision? _last;

    /// <summary>The percentage (0-100) and the resource it came from; null when no Telemetry resource sets one.</summary>
    public (double? Percentage, string? Source) For(MeshSnapshot snapshot)
    {
        var last = Volatile.Read(ref _last);
        if (last is null || !ReferenceEquals(last.Snapshot, snapshot))
        {
            last = Compute(snapshot);
            Volatile.Write(ref _last, last);
        }
        return (last.Percentage, last.Source);
    }

    private Decision Compute(MeshSnapshot snapshot)
    {
        Mesh.Model.L7.Telemetry? root = null, ns = null, targeted = null;
        foreach (var t in snapshot.ObjectsOf<Mesh.Model.L7.Telemetry>())
        {
            if (t.TargetRefs.IsDefaultOrEmpty && t.Selector is null)
            {
                if (t.Namespace == identity.Namespace)
                {
                    ns = First(ns, t);
                }
                else if (t.Namespace == rootNamespace)
                {
                    root = First(root, t);
                }
            }
            else if (t.Namespace == identity.Namespace && TargetsMe(t))
            {
                targeted = First(targeted, t);
            }
        }
        double? percentage = null;
        string? source = null;
        foreach (var t in (ReadOnlySpan<Mesh.Model.L7.Telemetry?>)[root, ns, targeted])
        {
            if (t is { Tracing: [var tracing, ..] } && tracing.RandomSamplingPercentage is { } p)
            {
                percentage = p;
                source = $"Telemetry {t.Namespace}/{t.Name}";
            }
        }
        return new Decision(snapshot, percentage, source);
    }

    private bool TargetsMe(Mesh.Model.L7.Telemetry t)
    {
        foreach (var r in t.TargetRefs)
        {
            if (r.Kind == "Gateway" && r.Group == "gateway.networking.k8s.io" && r.Name == identity.Name)
            {
                return true;
            }
        }
        return false;
    }

    private static Mesh.Model.L7.Telemetry First(Mesh.Model.L7.Telemetry? current, Mesh.Model.L7.Telemetry candidate) =>
        current is null || string.CompareOrdinal(candidate.Name, current.Name) < 0 ? candidate : current;
}
