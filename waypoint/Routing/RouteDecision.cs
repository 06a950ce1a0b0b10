using System.Collections.Immutable;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Waypoint.Governance;

namespace Ambient.Waypoint.Routing;

internal enum RouteOutcome
{
    /// <summary>Forward to <see cref="RouteDecision.Backend"/>.</summary>
    Forward,
    /// <summary>Answer locally: a redirect, a direct response, or an error of the route itself.</summary>
    Respond,
    /// <summary>Routes exist for the destination but none matched: 404, flag NR.</summary>
    NoRoute,
}

/// <summary>Where a request goes: a service port, optionally narrowed to a DestinationRule subset's pods.</summary>
/// <param name="Subset">The subset name (for logs), with <paramref name="SubsetLabels"/> the pods' labels.</param>
internal sealed record Backend(Service Service, int Port, string? Subset, ImmutableDictionary<string, string>? SubsetLabels);

/// <summary>A mirror of a route: where copies go and the share of requests copied (0..1).</summary>
internal sealed record MirrorTarget(Backend Backend, double Share);

/// <summary>Header edits in Gateway API / Istio order: set (replace), add (append), remove.</summary>
internal sealed record HeaderEdits(
    ImmutableArray<KeyValuePair<string, string>> Set,
    ImmutableArray<KeyValuePair<string, string>> Add,
    ImmutableArray<string> Remove)
{
    public static readonly HeaderEdits None = new([], [], []);

    public bool IsEmpty => Set.IsDefaultOrEmpty && Add.IsDefaultOrEmpty && Remove.IsDefaultOrEmpty;

    public static HeaderEdits From(HeaderModifier m) =>
        new([.. m.Set.Select(h => KeyValuePair.Create(h.Name, h.Value))], [.. m.Add.Select(h => KeyValuePair.Create(h.Name, h.Value))], m.Remove);

    public static HeaderEdits From(HeaderOperations? o) => o is null ? None : new([.. o.Set], [.. o.Add], o.Remove);

    public HeaderEdits Then(HeaderEdits next) => next.IsEmpty ? this : IsEmpty ? next
        : new(Set.AddRange(next.Set), Add.AddRange(next.Add), Remove.AddRange(next.Remove));
}

/// <summary>The routing answer for one request (immutable; built by <see cref="Router"/>).</summary>
internal sealed record RouteDecision
{
    public RouteOutcome Outcome { get; init; }

    /// <summary>"HTTPRoute/ns/name#rule" or "VirtualService/ns/name#route"; null for the default route.</summary>
    public string? RouteName { get; init; }

    public Backend? Backend { get; init; }

    /// <summary>A workload-addressed tunnel with no route: straight to that pod's port.</summary>
    public Workload? Workload { get; init; }

    public int WorkloadPort { get; init; }

    /// <summary>For <see cref="RouteOutcome.Respond"/>: the status, and a Location for redirects.</summary>
    public int Status { get; init; }

    public string? Location { get; init; }

    public ReadOnlyMemory<byte>? Body { get; init; }

    public string? Detail { get; init; }

    public HeaderEdits RequestHeaders { get; init; } = HeaderEdits.None;

    public HeaderEdits ResponseHeaders { get; init; } = HeaderEdits.None;

    /// <summary>A rewritten Host, or null to keep the request's.</summary>
    public string? Host { get; init; }

    /// <summary>A rewritten path (query string kept separately), or null to keep the request's.</summary>
    public string? Path { get; init; }

    /// <summary>Where copies of the request go (RequestMirror, VirtualService mirror / mirrors); usually empty.</summary>
    public ImmutableArray<MirrorTarget> Mirrors { get; init; } = [];

    /// <summary>Timeouts, retries and fault injection of the rule that matched (issue 11).</summary>
    public RoutePolicy Policy { get; init; } = RoutePolicy.Default;

    public static RouteDecision Error(int status, string? route, string detail) => new() { Outcome = RouteOutcome.Respond, Status = status, RouteName = route, Detail = detail };
}
