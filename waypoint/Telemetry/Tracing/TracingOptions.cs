using System.Collections;
using System.Globalization;
using OpenTelemetry.Exporter;

namespace Ambient.Waypoint.Telemetry.Tracing;

/// <summary>
/// Where and how the waypoint exports spans, read from the OpenTelemetry SDK's standard environment variables (a test
/// builds one directly: environment variables are per process, tests run several waypoints in one).
/// No endpoint means no span is made or exported; requests still get an <c>x-request-id</c> and the trace headers
/// pass through unchanged, as with Istio when no tracing provider is configured.
/// </summary>
internal sealed record TracingOptions
{
    /// <summary>The full traces URL: <c>http://collector:4318/v1/traces</c> (HTTP) or <c>http://collector:4317</c> (gRPC).</summary>
    public Uri? Endpoint { get; init; }

    public OtlpExportProtocol Protocol { get; init; } = OtlpExportProtocol.Grpc;

    /// <summary><c>OTEL_SERVICE_NAME</c>; null: Istio's <c>&lt;gateway&gt;.&lt;namespace&gt;</c>.</summary>
    public string? ServiceName { get; init; }

    /// <summary>
    /// The sampling percentage for traces that start here when no Telemetry resource sets one
    /// (<c>OTEL_TRACES_SAMPLER</c>/<c>_ARG</c>); null: Istio's default, 1%.
    /// </summary>
    public double? FallbackPercentage { get; init; }

    /// <summary>
    /// <c>always_on</c>, <c>always_off</c> and <c>traceidratio</c> decide without looking at the caller's sampled flag;
    /// the <c>parentbased_*</c> samplers (and Istio) follow it.
    /// </summary>
    public bool FallbackIgnoresParent { get; init; }

    /// <summary><c>OTEL_BSP_MAX_QUEUE_SIZE</c>: spans waiting for export; one more is dropped and counted.</summary>
    public int MaxQueueSize { get; init; } = 2048;

    /// <summary><c>OTEL_BSP_MAX_EXPORT_BATCH_SIZE</c>.</summary>
    public int MaxExportBatchSize { get; init; } = 512;

    /// <summary><c>OTEL_BSP_SCHEDULE_DELAY</c>: how long a partial batch waits.</summary>
    public TimeSpan ScheduleDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary><c>OTEL_EXPORTER_OTLP_TIMEOUT</c>: one export call's limit.</summary>
    public TimeSpan ExportTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public bool Enabled => Endpoint is not null;

    /// <summary>
    /// Reads the variables as the OpenTelemetry specification defines them. The traces-specific endpoint is used as
    /// given; the generic one gets <c>/v1/traces</c> appended for HTTP. The protocol defaults to gRPC, as the .NET SDK's
    /// does. A malformed value is an error naming the variable (the waypoint refuses to start rather than guess).
    /// </summary>
    public static TracingOptions FromEnvironment(IDictionary environment)
    {
        string? Get(string name) => environment[name] is string s && s.Trim().Length > 0 ? s.Trim() : null;

        var options = new TracingOptions();
        string? protocolText = Get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? Get("OTEL_EXPORTER_OTLP_PROTOCOL");
        var protocol = protocolText switch
        {
            null or "grpc" => OtlpExportProtocol.Grpc,
            "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
            _ => throw new FormatException($"OTEL_EXPORTER_OTLP_PROTOCOL: '{protocolText}' is not supported (grpc or http/protobuf)"),
        };
        Uri? endpoint = null;
        if (Get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") is { } traces)
        {
            endpoint = ParseUri("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces);
        }
        else if (Get("OTEL_EXPORTER_OTLP_ENDPOINT") is { } generic)
        {
            var baseUri = ParseUri("OTEL_EXPORTER_OTLP_ENDPOINT", generic);
            endpoint = protocol == OtlpExportProtocol.HttpProtobuf
                ? new Uri(baseUri.AbsoluteUri.TrimEnd('/') + "/v1/traces")
                : baseUri;
        }
        double? percentage = null;
        bool ignoresParent = false;
        if (Get("OTEL_TRACES_SAMPLER") is { } sampler)
        {
            double ratio = 1.0;
            if (sampler.EndsWith("traceidratio", StringComparison.Ordinal) && Get("OTEL_TRACES_SAMPLER_ARG") is { } arg)
            {
                if (!double.TryParse(arg, NumberStyles.Float, CultureInfo.InvariantCulture, out ratio) || ratio is < 0 or > 1 || double.IsNaN(ratio))
                {
                    throw new FormatException($"OTEL_TRACES_SAMPLER_ARG: '{arg}' is not a ratio between 0 and 1");
                }
            }
            (percentage, ignoresParent) = sampler switch
            {
                "always_on" => (100.0, true),
                "always_off" => (0.0, true),
                "traceidratio" => (ratio * 100, true),
                "parentbased_always_on" => (100.0, false),
                "parentbased_always_off" => (0.0, false),
                "parentbased_traceidratio" => (ratio * 100, false),
                _ => throw new FormatException($"OTEL_TRACES_SAMPLER: '{sampler}' is not supported (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)"),
            };
        }
        return options with
        {
            Endpoint = endpoint,
            Protocol = protocol,
            ServiceName = Get("OTEL_SERVICE_NAME"),
            FallbackPercentage = percentage,
            FallbackIgnoresParent = ignoresParent,
            MaxQueueSize = Positive(Get("OTEL_BSP_MAX_QUEUE_SIZE"), "OTEL_BSP_MAX_QUEUE_SIZE") ?? options.MaxQueueSize,
            MaxExportBatchSize = Positive(Get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), "OTEL_BSP_MAX_EXPORT_BATCH_SIZE") ?? options.MaxExportBatchSize,
            ScheduleDelay = Positive(Get("OTEL_BSP_SCHEDULE_DELAY"), "OTEL_BSP_SCHEDULE_DELAY") is { } ms ? TimeSpan.FromMilliseconds(ms) : options.ScheduleDelay,
            ExportTimeout = Positive(Get("OTEL_EXPORTER_OTLP_TIMEOUT"), "OTEL_EXPORTER_OTLP_TIMEOUT") is { } t ? TimeSpan.FromMilliseconds(t) : options.ExportTimeout,
        };
    }

    private static Uri ParseUri(string variable, string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri
            : throw new FormatException($"{variable}: '{value}' is not an http:// or https:// URL");

    private static int? Positive(string? value, string variable) =>
        value is null ? null
        : int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n
        : throw new FormatException($"{variable}: '{value}' is not a positive integer");
}
