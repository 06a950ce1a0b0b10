using System.Diagnostics;
using System.Globalization;
using System.Text;
using Ambient.Mesh.Sources;
using Ambient.Waypoint.Hbone;
using Microsoft.AspNetCore.Http;
using OpenTelemetry;
using OpenTelemetry.Context.Propagation;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Ambient.Waypoint.Telemetry.Tracing;

/// <summary>
/// The waypoint's spans, as Envoy makes them for Istio: a server span for each request it receives, continuing the
/// caller's trace (W3C <c>traceparent</c>/<c>tracestate</c>, else B3 single <c>b3</c>, else B3 multi
/// <c>X-B3-*</c>), and a client span for the forward to the chosen pod, whose context goes upstream in W3C and in
/// the B3 form the request came with. Both are named <c>&lt;host&gt;:&lt;port&gt;/*</c> (Istio's route decorator) and carry
/// Istio's tags. Spans come from one <see cref="ActivitySource"/> and go out through the OpenTelemetry SDK:
/// <see cref="WaypointSampler"/> decides, <see cref="SpanExportQueue"/> exports over OTLP without ever blocking a
/// request. Without an OTLP endpoint nothing is made: the trace headers pass through unchanged.
/// </summary>
internal sealed class WaypointTracing : IDisposable
{
    public const string SourceName = "Ambient.Waypoint";

    private static readonly TraceContextPropagator W3C = new();
#pragma warning disable CS0618 // OpenTelemetry.Extensions.Propagators (B3's new home) is not on the package feed we use; this is the same code
    private static readonly B3Propagator B3Single = new(singleHeader: true);
    private static readonly B3Propagator B3Multi = new(singleHeader: false);
#pragma warning restore CS0618

    private static readonly Func<IHeaderDictionary, string, IEnumerable<string>?> HeaderGetter =
        static (headers, name) => headers.TryGetValue(name, out var v) && v.Count > 0 ? (IEnumerable<string>)v : null;

    private static readonly Action<HttpRequestMessage, string, string> HeaderSetter =
        static (request, name, value) => request.Headers.TryAddWithoutValidation(name, value);

    private static readonly string[] PropagationHeaders =
        ["traceparent", "tracestate", "b3", "X-B3-TraceId", "X-B3-SpanId", "X-B3-ParentSpanId", "X-B3-Sampled", "X-B3-Flags"];

    private readonly ActivitySource _source;
    private readonly TracerProvider? _provider;
    private readonly SpanExportQueue? _queue;
    private readonly WaypointIdentity _identity;
    private readonly MeshStore _store;
    private readonly KeyValuePair<string, object?>[] _creationTags;

    /// <summary>The custom property that carries a span's <see cref="TracingSettings"/> (tags, reporting).</summary>
    internal const string SettingsProperty = "ambient.tracing";

    /// <summary>
    /// The settings of the server span being started on this thread, for the sampler: the SDK calls it synchronously
    /// inside StartActivity, before the span exists to carry them.
    /// </summary>
    [ThreadStatic]
    private static TracingSettings? t_starting;

    /// <summary>
    /// What the sampler sees for a root that <see cref="StartServer"/> sampled by its request id: 100%, so the SDK's
    /// decision (by trace id) agrees with the one already taken.
    /// </summary>
    private static readonly TracingSettings SampledByRequestId = TracingSettings.None with { Percentage = 100 };

    /// <summary>The id <see cref="StartServer"/> decided a new trace on, for the root span it is starting on this thread.</summary>
    [ThreadStatic]
    private static ActivityTraceId t_rootTraceId;

    private static int s_generatorInstalled;

    private readonly double _fallback;
    private readonly bool _fallbackIgnoresParent;

    public WaypointTracing(TracingOptions options, WaypointIdentity identity, MeshStore store)
    {
        _identity = identity;
        _store = store;
        NodeId = $"waypoint~{identity.Address}~{identity.Name}.{identity.Namespace}~{identity.Namespace}.svc.cluster.local";
        _creationTags = [new(WaypointSampler.NodeIdTag, NodeId)];
        // One source per waypoint (same name): spans are told apart by owner when a process hosts several.
        _source = new ActivitySource(SourceName, typeof(WaypointTracing).Assembly.GetName().Version?.ToString(3));
        Policy = new TracingPolicy(identity);
        if (options.Endpoint is not { } endpoint)
        {
            return;
        }
        var exporterOptions = new OtlpExporterOptions
        {
            Endpoint = endpoint,
            Protocol = options.Protocol,
            TimeoutMilliseconds = (int)options.ExportTimeout.TotalMilliseconds,
        };
        _fallback = options.FallbackPercentage ?? DefaultPercentage;
        _fallbackIgnoresParent = options.FallbackIgnoresParent;
        InstallRootTraceIdGenerator();
        var sampler = new WaypointSampler(NodeId, () => RootSampling(t_starting));
#pragma warning disable CA2000 // the provider owns the exporter and the queue, and this owns the provider
        _queue = new SpanExportQueue(new OtlpTraceExporter(exporterOptions), options, _source);
        var resource = ResourceBuilder.CreateDefault()
            .AddAttributes([
                new("k8s.namespace.name", identity.Namespace),
                new("istio.canonical_service", identity.Name),
            ]);
        if (options.ServiceName is null)
        {
            // Istio's service name for a proxy's spans: <canonical service>.<namespace>.
            resource.AddService($"{identity.Name}.{identity.Namespace}");
        }
        _provider = Sdk.CreateTracerProviderBuilder()
            .AddSource(SourceName)
            .SetSampler(sampler)
            .SetResourceBuilder(resource)
            .AddProcessor(_queue)
            .Build();
#pragma warning restore CA2000
    }

    /// <summary>
    /// Makes a root span this class starts take the trace id its sampling was decided on (the SDK would otherwise draw
    /// another and decide again, sampling p² of new traces). .NET's only hook for a root's id is process-wide, so it
    /// is installed once and answers for every other root span exactly as before: the previous generator, else random.
    /// </summary>
    private static void InstallRootTraceIdGenerator()
    {
        if (Interlocked.Exchange(ref s_generatorInstalled, 1) != 0)
        {
            return;
        }
        var previous = Activity.TraceIdGenerator;
        Activity.TraceIdGenerator = () => t_rootTraceId != default ? t_rootTraceId : previous?.Invoke() ?? ActivityTraceId.CreateRandom();
    }

    /// <summary>Istio's default sampling when nothing configures it.</summary>
    public const double DefaultPercentage = 1.0;

    /// <summary>Istio's node id for this proxy, also the tag that marks this waypoint's spans.</summary>
    public string NodeId { get; }

    public TracingPolicy Policy { get; }

    public bool Enabled => _provider is not null;

    /// <summary>
    /// Starts the request's server span: the caller's trace continues, or a new one starts here. The sampling decision
    /// (<see cref="WaypointSampler.Decide"/>, the same one the SDK's sampler takes) comes first: an unsampled request
    /// (99% of them at Istio's default 1%) makes no span at all and returns null; it only leaves an
    /// <see cref="UnsampledTrace"/> on the request, which the forward turns into the upstream's trace headers.
    /// </summary>
    public Activity? StartServer(HttpContext context, TunnelInfo tunnel)
    {
        if (_provider is null)
        {
            return null;
        }
        var headers = context.Request.Headers;
        bool w3c = headers.ContainsKey("traceparent");
        bool single = headers.ContainsKey("b3");
        bool multi = headers.ContainsKey("X-B3-TraceId");
        PropagationContext parent = default;
        if (w3c || single || multi)
        {
            // Each propagator keeps a context an earlier one found; a request without trace headers skips all three.
            parent = W3C.Extract(parent, headers, HeaderGetter);
            parent = B3Single.Extract(parent, headers, HeaderGetter);
            parent = B3Multi.Extract(parent, headers, HeaderGetter);
        }
        // The span's parent is the caller's context or nothing, never an activity that happens to be ambient.
        Activity.Current = null;
        var settings = Policy.For(_store.Current, tunnel.Service);
        var (percentage, ignoreParent) = RootSampling(settings);
        var remote = parent.ActivityContext;
        // A trace that starts here gets its id now, so the decision and, when sampled, the span use the same one.
        var traceId = remote.TraceId != default ? remote.TraceId : ActivityTraceId.CreateRandom();
        // A trace that starts here under a Telemetry percentage is sampled by its x-request-id when the resource says
        // so (Istio's default), as Envoy does; otherwise (and under OTEL_TRACES_SAMPLER) by its trace id.
        bool? byRequestId = settings is { UseRequestId: true, Percentage: not null } && !WaypointSampler.ParentDecides(remote, ignoreParent)
            ? WaypointSampler.IsSampledByRequestId(headers["x-request-id"].ToString(), percentage)
            : null;
        if (!(byRequestId ?? WaypointSampler.Decide(remote, traceId, percentage, ignoreParent)))
        {
            context.Features.Set(new UnsampledTrace(traceId, remote.TraceState, single, multi));
            return null;
        }
        t_starting = byRequestId == true ? SampledByRequestId : settings;
        t_rootTraceId = remote.TraceId != default ? default : traceId;
        Activity? span;
        try
        {
            string host = tunnel.Service?.Hostname ?? tunnel.Authority.Address.ToString();
            span = _source.StartActivity(SpanName(host, tunnel.Authority.Port), ActivityKind.Server, remote, _creationTags);
        }
        finally
        {
            t_starting = null;
            t_rootTraceId = default;
        }
        span?.SetCustomProperty(SettingsProperty, settings);
        return span;
    }

    /// <summary>The percentage for traces that start here, and whether it overrides a caller's decision.</summary>
    private (double Percentage, bool IgnoreParent) RootSampling(TracingSettings? settings) =>
        (settings ?? Policy.For(_store.Current, null)) is { Percentage: { } p } ? (p, false) : (_fallback, _fallbackIgnoresParent);

    /// <summary>Starts the client span for the forward (a child of the server span, now the current activity).</summary>
    public Activity? StartClient(string host, int port)
    {
        if (_provider is null || Activity.Current is not { } server || server.Source != _source)
        {
            return null;
        }
        var span = _source.StartActivity(SpanName(host, port), ActivityKind.Client, server.Context, _creationTags);
        span?.SetCustomProperty(SettingsProperty, server.GetCustomProperty(SettingsProperty));
        return span;
    }

    public void EndServer(Activity? span, HttpContext context, RequestRecord record)
    {
        if (span is null)
        {
            return;
        }
        if (span.IsAllDataRequested)
        {
            var request = context.Request;
            AddCommonTags(span, context, record);
            span.SetTag("http.protocol", record.Protocol);
            span.SetTag("downstream_cluster", "-");
            span.SetTag("user_agent", request.Headers.UserAgent.Count > 0 ? request.Headers.UserAgent.ToString() : "-");
            span.SetTag("peer.address", record.Tunnel.Client.Address.ToString());
            span.SetTag("request_size", record.RequestBytes.ToString(CultureInfo.InvariantCulture));
            span.SetTag("response_size", record.ResponseBytes.ToString(CultureInfo.InvariantCulture));
            span.SetTag("http.status_code", record.Status.ToString(CultureInfo.InvariantCulture));
            if (record.Upstream is not null)
            {
                span.SetTag("upstream_cluster", record.UpstreamCluster);
                span.SetTag("upstream_cluster.name", record.UpstreamCluster);
            }
            MarkError(span, record.Status, record.ResponseFlags);
        }
        span.Stop();
    }

    /// <summary>Ends the client span once the forward is done: the upstream's status (or the waypoint's error status).</summary>
    public void EndClient(Activity? span, HttpContext context, RequestRecord record)
    {
        if (span is null)
        {
            return;
        }
        if (span.IsAllDataRequested)
        {
            AddCommonTags(span, context, record);
            int status = context.Response.StatusCode;
            span.SetTag("http.status_code", status.ToString(CultureInfo.InvariantCulture));
            span.SetTag("upstream_cluster", record.UpstreamCluster);
            span.SetTag("upstream_cluster.name", record.UpstreamCluster);
            if (record.Upstream is { } upstream)
            {
                span.SetTag("peer.address", upstream);
            }
            MarkError(span, status, record.ResponseFlags);
        }
        span.Stop();
    }

    /// <summary>
    /// Replaces the trace headers of a request going upstream (the forwarder copied the caller's) with the current
    /// client span's context: W3C always, B3 in whichever form the request carried.
    /// </summary>
    public void Inject(HttpRequestMessage request)
    {
        if (Activity.Current is not { } span || span.Source != _source)
        {
            return;
        }
        var h = request.Headers;
        bool single = h.Contains("b3");
        bool multi = h.Contains("X-B3-TraceId");
        foreach (var name in PropagationHeaders)
        {
            h.Remove(name);
        }
        var context = new PropagationContext(span.Context, Baggage.Current);
        W3C.Inject(context, request, HeaderSetter);
        if (single)
        {
            B3Single.Inject(context, request, HeaderSetter);
        }
        if (multi)
        {
            B3Multi.Inject(context, request, HeaderSetter);
        }
    }

    /// <summary>
    /// Gives the upstream request of an unsampled request (one <see cref="StartServer"/> made no span for) its trace
    /// context, as Envoy does: the trace continues with a new span id and the sampled flag 0, in W3C always (the
    /// caller's <c>tracestate</c> kept) and in the B3 forms the caller used. Nothing when the request was sampled or
    /// tracing is off.
    /// </summary>
    public static void InjectUnsampled(HttpContext context, HttpRequestMessage request)
    {
        if (context.Features.Get<UnsampledTrace>() is not { } trace)
        {
            return;
        }
        var h = request.Headers;
        foreach (var name in PropagationHeaders)
        {
            h.Remove(name);
        }
        string traceId = trace.TraceId.ToHexString();
        string spanId = trace.SpanId.ToHexString();
        h.TryAddWithoutValidation("traceparent", $"00-{traceId}-{spanId}-00");
        if (!string.IsNullOrEmpty(trace.TraceState))
        {
            h.TryAddWithoutValidation("tracestate", trace.TraceState);
        }
        if (trace.B3Single)
        {
            h.TryAddWithoutValidation("b3", $"{traceId}-{spanId}-0");
        }
        if (trace.B3Multi)
        {
            h.TryAddWithoutValidation("X-B3-TraceId", traceId);
            h.TryAddWithoutValidation("X-B3-SpanId", spanId);
            h.TryAddWithoutValidation("X-B3-Sampled", "0");
        }
    }

    /// <summary>Adds the span counters to the waypoint's metrics page.</summary>
    public void Render(StringBuilder sb)
    {
        if (_queue is null)
        {
            return;
        }
        var (full, failed) = _queue.Dropped;
        sb.Append("# HELP ambient_waypoint_spans_dropped_total Sampled spans not exported: the export queue was full, or the collector failed or could not be reached.\n")
          .Append("# TYPE ambient_waypoint_spans_dropped_total counter\n")
          .Append(CultureInfo.InvariantCulture, $"ambient_waypoint_spans_dropped_total{{reason=\"queue_full\"}} {full}\n")
          .Append(CultureInfo.InvariantCulture, $"ambient_waypoint_spans_dropped_total{{reason=\"export_failed\"}} {failed}\n")
          .Append("# HELP ambient_waypoint_spans_exported_total Spans the OTLP collector accepted.\n")
          .Append("# TYPE ambient_waypoint_spans_exported_total counter\n")
          .Append(CultureInfo.InvariantCulture, $"ambient_waypoint_spans_exported_total {_queue.Exported}\n");
    }

    /// <summary>Sends what is queued (tests; shutdown does it too).</summary>
    public bool Flush(TimeSpan timeout) => _provider?.ForceFlush((int)timeout.TotalMilliseconds) ?? true;

    public void Dispose()
    {
        _provider?.Dispose();
        _source.Dispose();
    }

    /// <summary>Istio's route decorator: the span name Envoy gives a request for a service port.</summary>
    internal static string SpanName(string host, int port) => $"{host}:{port.ToString(CultureInfo.InvariantCulture)}/*";

    private void AddCommonTags(Activity span, HttpContext context, RequestRecord record)
    {
        if (span.GetCustomProperty(SettingsProperty) is TracingSettings { CustomTags.IsEmpty: false } settings)
        {
            AddCustomTags(span, context.Request, settings);
        }
        span.SetTag("component", "proxy");
        span.SetTag("istio.canonical_service", _identity.Name);
        span.SetTag("istio.canonical_revision", "latest");
        span.SetTag("istio.namespace", _identity.Namespace);
        span.SetTag("http.method", record.Method);
        span.SetTag("http.url", $"{(context.Request.IsHttps ? "https" : "http")}://{record.Authority}{record.Path}");
        span.SetTag("guid:x-request-id", context.Request.Headers["x-request-id"].ToString());
        span.SetTag("response_flags", record.ResponseFlags);
    }

    /// <summary>
    /// Telemetry <c>customTags</c>, as Envoy sets them: a literal; an environment variable of the waypoint or a request
    /// header, else its <c>defaultValue</c>, else no tag. A <c>formatter</c> tag is not supported and is left out.
    /// </summary>
    private static void AddCustomTags(Activity span, HttpRequest request, TracingSettings settings)
    {
        foreach (var (name, tag) in settings.CustomTags)
        {
            string? value = tag.Type switch
            {
                Mesh.Model.L7.CustomTagType.Literal => tag.Value,
                Mesh.Model.L7.CustomTagType.Environment => Environment.GetEnvironmentVariable(tag.Name!) ?? tag.DefaultValue,
                Mesh.Model.L7.CustomTagType.Header => request.Headers.TryGetValue(tag.Name!, out var h) && h.Count > 0 ? h.ToString() : tag.DefaultValue,
                _ => null,
            };
            if (value is not null)
            {
                span.SetTag(name, value);
            }
        }
    }

    /// <summary>Whether a span may be exported: Telemetry <c>disableSpanReporting</c> keeps it (propagation is unchanged).</summary>
    internal static bool Reported(Activity span) => span.GetCustomProperty(SettingsProperty) is not TracingSettings { DisableSpanReporting: true };

    private static void MarkError(Activity span, int status, string flags)
    {
        // Envoy marks a span failed on a 5xx or on a response flag that means the proxy could not deliver it.
        if (status >= 500 || (status == 0 && flags != "-"))
        {
            span.SetTag("error", "true");
            span.SetStatus(ActivityStatusCode.Error);
        }
    }
}
