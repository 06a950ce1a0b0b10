using System.Collections.Immutable;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Mesh.State;
using Ambient.Waypoint.Hbone;

namespace Ambient.Waypoint.Telemetry.Tracing;

/// <summary>What Istio's Telemetry resources say about tracing for one service's requests through this waypoint.</summary>
/// <param name="Percentage">0-100, for traces that start here; null when no Telemetry resource sets it.</param>
/// <param name="Source">The most specific resource that set the percentage (for logs and the config dump).</param>
/// <param name="DisableSpanReporting">Spans are made and propagated as usual, but not exported.</param>
/// <param name="CustomTags">Tag name -> where its value comes from, added to the server and client spans.</param>
/// <param name="UseRequestId">
/// <c>useRequestIdForTraceSampling</c> (Istio's default: true): a trace that starts here is sampled by its request's
/// <c>x-request-id</c> as Envoy does it, so every proxy that sees the same request id decides the same way.
/// </param>
internal sealed record TracingSettings(double? Percentage, string? Source, bool DisableSpanReporting, ImmutableDictionary<string, CustomTag> CustomTags, bool UseRequestId = true)
{
    public static readonly TracingSettings None = new(null, null, false, ImmutableDictionary<string, CustomTag>.Empty);
}

/// <summary>
/// Istio's Telemetry (telemetry.istio.io/v1 <c>tracing[0]</c>) for this waypoint, with Istio's precedence from least
/// to most specific: the mesh (root namespace <c>istio-system</c>, no selector or targetRefs), the waypoint's
/// namespace (likewise), the waypoint itself (<c>targetRefs</c> to its Gateway, or a <c>selector</c> matching its
/// pod's labels), then the destination Service (<c>targetRefs</c> to the Service, in the Service's namespace). Each
/// level overrides only what it sets: <c>randomSamplingPercentage</c>, <c>disableSpanReporting</c>,
/// <c>useRequestIdForTraceSampling</c>, and
/// <c>customTags</c> tag by tag (as Istio merges them). Among several at one level, the first by name wins (Istio
/// takes the oldest; names are stable across sources). Worked out once per mesh snapshot, so a changed resource
/// applies to the next request.
/// </summary>
internal sealed class TracingPolicy(WaypointIdentity identity, string rootNamespace = "istio-system")
{
    /// <param name="Waypoint">What applies to every request here (the mesh, namespace and waypoint levels merged).</param>
    /// <param name="Services">Per Service (namespace, name) with a Telemetry of its own: that merged on top.</param>
    private sealed record Decision(MeshSnapshot Snapshot, TracingSettings Waypoint, ImmutableDictionary<(string, string), TracingSettings> Services);

    private Decision? _last;

    /// <summary>The percentage (0-100) and the resource it came from for the waypoint as a whole.</summary>
    public (double? Percentage, string? Source) For(MeshSnapshot snapshot)
    {
        var settings = Current(snapshot).Waypoint;
        return (settings.Percentage, settings.Source);
    }

    /// <summary>The settings for a request to <paramref name="service"/> (null: an address no service owns).</summary>
    public TracingSettings For(MeshSnapshot snapshot, Service? service)
    {
        var d = Current(snapshot);
        return service is not null && !d.Services.IsEmpty && d.Services.TryGetValue((service.Namespace, service.Name), out var s) ? s : d.Waypoint;
    }

    private Decision Current(MeshSnapshot snapshot)
    {
        var last = Volatile.Read(ref _last);
        if (last is null || !ReferenceEquals(last.Snapshot, snapshot))
        {
            last = Compute(snapshot);
            Volatile.Write(ref _last, last);
        }
        return last;
    }

    private Decision Compute(MeshSnapshot snapshot)
    {
        Mesh.Model.L7.Telemetry? root = null, ns = null, targeted = null;
        var services = new Dictionary<(string, string), Mesh.Model.L7.Telemetry>();
        var self = identity.Self(snapshot);
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
                continue;
            }
            if (t.Selector is { } selector)
            {
                if (t.Namespace == identity.Namespace && self is not null && Matches(selector, self.Labels))
                {
                    targeted = First(targeted, t);
                }
                continue;
            }
            foreach (var r in t.TargetRefs)
            {
                if (r.Group == "gateway.networking.k8s.io" && r.Kind == "Gateway")
                {
                    if (t.Namespace == identity.Namespace && r.Name == identity.Name)
                    {
                        targeted = First(targeted, t);
                    }
                }
                else if (r.Group.Length == 0 && r.Kind == "Service")
                {
                    var key = (t.Namespace, r.Name);
                    services[key] = services.TryGetValue(key, out var current) ? First(current, t) : t;
                }
            }
        }
        var waypoint = TracingSettings.None;
        foreach (var t in (ReadOnlySpan<Mesh.Model.L7.Telemetry?>)[root, ns, targeted])
        {
            waypoint = Merge(waypoint, t);
        }
        var perService = ImmutableDictionary.CreateBuilder<(string, string), TracingSettings>();
        foreach (var (key, t) in services)
        {
            perService[key] = Merge(waypoint, t);
        }
        return new Decision(snapshot, waypoint, perService.ToImmutable());
    }

    private static TracingSettings Merge(TracingSettings below, Mesh.Model.L7.Telemetry? t)
    {
        if (t is not { Tracing: [var tracing, ..] })
        {
            return below;
        }
        var result = below;
        if (tracing.RandomSamplingPercentage is { } p)
        {
            result = result with { Percentage = p, Source = $"Telemetry {t.Namespace}/{t.Name}" };
        }
        if (tracing.DisableSpanReporting is { } disable)
        {
            result = result with { DisableSpanReporting = disable };
        }
        if (tracing.UseRequestIdForTraceSampling is { } useRequestId)
        {
            result = result with { UseRequestId = useRequestId };
        }
        if (!tracing.CustomTags.IsEmpty)
        {
            result = result with { CustomTags = result.CustomTags.SetItems(tracing.CustomTags) };
        }
        return result;
    }

    private static bool Matches(ImmutableDictionary<string, string> selector, ImmutableDictionary<string, string> labels)
    {
        foreach (var (k, v) in selector)
        {
            if (!labels.TryGetValue(k, out var actual) || actual != v)
            {
                return false;
            }
        }
        return true;
    }

    private static Mesh.Model.L7.Telemetry First(Mesh.Model.L7.Telemetry? current, Mesh.Model.L7.Telemetry candidate) =>
        current is null || string.CompareOrdinal(candidate.Name, current.Name) < 0 ? candidate : current;
}
