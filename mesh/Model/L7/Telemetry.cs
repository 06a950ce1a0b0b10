using System.Collections.Immutable;

namespace Ambient.Mesh.Model.L7;

/// <summary>
/// An Istio Telemetry (telemetry.istio.io v1; v1alpha1 reads the same): tracing, access logging and metrics settings
/// for the workloads it selects (by labels or, for waypoints, by targetRefs; neither means the whole namespace,
/// or the mesh in the root namespace).
/// </summary>
public sealed record Telemetry : MeshObject
{
    public override string Kind => "Telemetry";

    /// <summary><c>selector.matchLabels</c>; null when the resource does not select by labels.</summary>
    public ImmutableDictionary<string, string>? Selector { get; init; }

    /// <summary><c>targetRefs</c> (and the older single <c>targetRef</c>): Gateways (waypoints), Services, ServiceEntries.</summary>
    public ImmutableArray<PolicyTargetReference> TargetRefs { get; init; } = [];

    public ImmutableArray<TracingConfig> Tracing { get; init; } = [];

    public ImmutableArray<AccessLoggingConfig> AccessLogging { get; init; } = [];

    public ImmutableArray<MetricsConfig> Metrics { get; init; } = [];
}

/// <summary>A reference to the object a policy attaches to, in the policy's namespace.</summary>
public sealed record PolicyTargetReference(string Group, string Kind, string Name);

/// <summary>Which side of a call a setting applies to.</summary>
public enum WorkloadMode
{
    ClientAndServer,
    Client,
    Server,
}

/// <summary>
/// One <c>tracing</c> entry. Null fields are unset: the consumer falls back to a less specific Telemetry, then the
/// mesh config (whose default sampling is 1%).
/// </summary>
public sealed record TracingConfig
{
    public WorkloadMode Match { get; init; }

    /// <summary>Extension provider names from the mesh config (e.g. an OpenTelemetry collector).</summary>
    public ImmutableArray<string> Providers { get; init; } = [];

    /// <summary>0-100: the share of traces started here that are sampled.</summary>
    public double? RandomSamplingPercentage { get; init; }

    public bool? DisableSpanReporting { get; init; }

    public bool? DisableContextPropagation { get; init; }

    public bool? UseRequestIdForTraceSampling { get; init; }

    public bool? EnableIstioTags { get; init; }

    /// <summary>Span tag name -> where its value comes from.</summary>
    public ImmutableDictionary<string, CustomTag> CustomTags { get; init; } = ImmutableDictionary<string, CustomTag>.Empty;
}

public enum CustomTagType
{
    /// <summary>A fixed value (<see cref="CustomTag.Value"/>).</summary>
    Literal,
    /// <summary>An environment variable of the proxy (<see cref="CustomTag.Name"/>).</summary>
    Environment,
    /// <summary>A request header (<see cref="CustomTag.Name"/>).</summary>
    Header,
    /// <summary>An access-log style format string (<see cref="CustomTag.Value"/>).</summary>
    Formatter,
}

/// <param name="DefaultValue">For Environment and Header: the value when the source is absent.</param>
public sealed record CustomTag(CustomTagType Type, string? Name, string? Value, string? DefaultValue);

/// <summary>One <c>accessLogging</c> entry.</summary>
/// <param name="Filter">A CEL expression choosing which requests are logged; null logs all.</param>
public sealed record AccessLoggingConfig(WorkloadMode Match, ImmutableArray<string> Providers, bool? Disabled, string? Filter);

/// <summary>One <c>metrics</c> entry.</summary>
public sealed record MetricsConfig(ImmutableArray<string> Providers, ImmutableArray<MetricsOverride> Overrides, TimeSpan? ReportingInterval);

/// <summary>Changes to one metric (or all) for one mode: disable it, or add/remove its tags (labels).</summary>
public sealed record MetricsOverride(MetricSelector? Match, bool? Disabled, ImmutableDictionary<string, TagOverride> TagOverrides);

/// <param name="Metric">A standard metric (REQUEST_COUNT, REQUEST_DURATION, ... or ALL_METRICS); exclusive with <paramref name="CustomMetric"/>.</param>
public sealed record MetricSelector(string? Metric, string? CustomMetric, WorkloadMode Mode);

public enum TagOperation
{
    Upsert,
    Remove,
}

/// <param name="Value">For Upsert: a CEL expression giving the tag's value.</param>
public sealed record TagOverride(TagOperation Operation, string? Value);
