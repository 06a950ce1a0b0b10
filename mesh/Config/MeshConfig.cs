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

/// <summary>Which firewall programs the in-pod capture rules.</summary>
public enum CaptureFirewall
{
    Iptables,
    Nftables,
}

/// <summary>How inbound traffic reaches the 15006 listener inside a pod.</summary>
public enum InboundCapture
{
    /// <summary>mangle/TPROXY: no NAT, the listener sees the true destination as its local address (the default).</summary>
    Tproxy,
    /// <summary>nat/REDIRECT to 15006 (Istio 1.24+); the destination comes back from SO_ORIGINAL_DST.</summary>
    Redirect,
}

/// <summary>In-pod mode settings (project keys under <c>inpod:</c>).</summary>
public sealed record InPodConfig
{
    /// <summary>Unix socket the CNI plugin talks to (cni-plugin/PROTOCOL.md).</summary>
    public string CniSocket { get; init; } = "/var/run/ambient/cni.sock";
    /// <summary>Where the agent publishes which pods are enrolled, for the plugin to read while the agent is down.</summary>
    public string EnrollmentFile { get; init; } = "/var/run/ambient/enrollment.json";
    public CaptureFirewall Firewall { get; init; } = CaptureFirewall.Iptables;
    public InboundCapture InboundCapture { get; init; } = InboundCapture.Tproxy;
    /// <summary>
    /// Namespaces whose every pod is enrolled (local mode has no namespace labels: this stands in for
    /// <c>istio.io/dataplane-mode=ambient</c> on a namespace). Pods named by a config workload are always enrolled.
    /// </summary>
    public System.Collections.Immutable.ImmutableArray<string> Namespaces { get; init; } = [];
    /// <summary>Enroll every pod outside kube-system.</summary>
    public bool All { get; init; }
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
    public InPodConfig InPod { get; init; } = new();
    public AccessLogFormat AccessLog { get; init; } = AccessLogFormat.Text;
    /// <summary>Workload certificate lifetime (Istio default 24 h).</summary>
    public TimeSpan CertificateLifetime { get; init; } = TimeSpan.FromHours(24);
    /// <summary>How long SIGTERM waits for open connections before closing them.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>
    /// Server-side HBONE connections that carry no stream for this long are closed (GOAWAY). Longer than the 5 minutes
    /// Istio's ztunnel (and this agent's pool) keep an idle client connection, so a well-behaved client always closes
    /// first and never races the server's GOAWAY with a new stream; bounded, so empty connections cannot pile up.
    /// </summary>
    public TimeSpan HboneIdleTimeout { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Directory for persisted state (generated CA, in-pod registry). Null = the agent's default.</summary>
    public string? StateDir { get; init; }

    public ImmutableArray<Workload> Workloads { get; init; } = [];
    public ImmutableArray<Service> Services { get; init; } = [];
    public ImmutableArray<AuthorizationPolicy> Policies { get; init; } = [];

    /// <summary>The file this was loaded from (for messages), or null.</summary>
    public string? SourcePath { get; init; }
}
