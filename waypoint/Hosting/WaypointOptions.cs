using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Kubernetes.Api;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Hosting;

/// <summary>What the command line (or a test) gives the waypoint besides its config file.</summary>
internal sealed record WaypointOptions
{
    public required string GatewayNamespace { get; init; }

    public required string GatewayName { get; init; }

    public string? ConfigPath { get; init; }

    public ImmutableArray<string> Manifests { get; init; } = [];

    public KubernetesApiOptions? Kubernetes { get; init; }

    /// <summary>Istio's CA (<see cref="ControlPlaneOptions.CaAddress"/>) for the waypoint's certificate; null = the built-in CA.</summary>
    public ControlPlaneOptions? ControlPlane { get; init; }

    /// <summary>Delays between attempts at the first certificate from Istio's CA (default <see cref="Backoff.Istio"/>; tests shorten it).</summary>
    public Backoff? CaRetry { get; init; }

    public string? StateDir { get; init; }

    public AccessLogFormat? AccessLog { get; init; }

    /// <summary>Where access log lines go (stdout by default; tests capture them).</summary>
    public TextWriter? AccessLogWriter { get; init; }

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>OTLP export and sampling (the program reads the <c>OTEL_*</c> variables); null: no tracing.</summary>
    public Telemetry.Tracing.TracingOptions? Tracing { get; init; }

    /// <summary>How long a tunnel to a port that declares no protocol waits for the client's first bytes before it is relayed as TCP.</summary>
    public TimeSpan ProtocolDetectionTimeout { get; init; } = Proxy.ProtocolSniffer.DefaultTimeout;

    public const string DefaultStateDir = "/var/lib/ambient";
}
