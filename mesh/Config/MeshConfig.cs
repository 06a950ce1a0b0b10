using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.Config;

/// <summary>Where the agent opens its listeners.</summary>
public enum AgentMode
{
    /// <summary>Listeners in the agent's own network namespace (one host, no capture).</summary>
    Shared,
    /// <summary>Listeners inside each enrolled pod's network namespace (issue 3).</summary>
    InPod,
}

public enum AccessLogFormat
{
    Text,
    Json,
    Off,
}

/// <summary>Listener addresses (project keys under <c>listeners:</c>, plus admin/metrics/readiness at top level).</summary>
public sealed record ListenerConfig
{
    public IPEndPoint Outbound { get; init; } = new(IPAddress.Loopback, 15001);
    public IPEndPoint Inbound { get; init; } = new(IPAddress.Any, 15006);
    public IPEndPoint Hbone { get; init; } = new(IPAddress.Any, 15008);
    public IPEndPoint Socks5 { get; init; } = new(IPAddress.Loopback, 15080);
    public IPEndPoint Admin { get; init; } = new(IPAddress.Loopback, 15000);
    public IPEndPoint Metrics { get; init; } = new(IPAddress.Any, 15020);
    public IPEndPoint Readiness { get; init; } = new(IPAddress.Any, 15021);
}

/// <summary>
/// The whole configuration of one agent: Istio ztunnel's local config (workloads, services, policies)
/// plus this project's keys. Immutable; a reload builds a new one and swaps it whole.
/// </summary>
public sealed record MeshConfig
{
    public string TrustDomain { get; init; } = "cluster.local";
    /// <summary>PEM CA certificate that signs workload certificates (with <see cref="CaKeyFile"/>); null = generate and persist.</summary>
    public string? CaCertFile { get; init; }
    public string? CaKeyFile { get; init; }
    public AgentMode Mode { get; init; } = AgentMode.Shared;
    public ListenerConfig Listeners { get; init; } = new();
    public AccessLogFormat AccessLog { get; init; } = AccessLogFormat.Text;
    /// <summary>Workload certificate lifetime (Istio default 24 h).</summary>
    public TimeSpan CertificateLifetime { get; init; } = TimeSpan.FromHours(24);
    /// <summary>How long SIGTERM waits for open connections before closing them.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Directory for persisted state (generated CA, in-pod registry). Null = the agent's default.</summary>
    public string? StateDir { get; init; }

    public ImmutableArray<Workload> Workloads { get; init; } = [];
    public ImmutableArray<Service> Services { get; init; } = [];
    public ImmutableArray<AuthorizationPolicy> Policies { get; init; } = [];

    /// <summary>The file this was loaded from (for messages), or null.</summary>
    public string? SourcePath { get; init; }
}
