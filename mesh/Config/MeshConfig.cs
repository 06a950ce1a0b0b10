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
/// The agent's own settings: where it listens, its mode, CA files, state dir, timeouts. Restart-only: proxy code
/// reads them from here, never through the mesh snapshot, and a live config edit that changes one of them is
/// refused (the old value stays) instead of being half-applied.
/// </summary>
public sealed record AgentSettings
{
    public string TrustDomain { get; init; } = "cluster.local";
    public string? CaCertFile { get; init; }
    public string? CaKeyFile { get; init; }
    public AgentMode Mode { get; init; } = AgentMode.Shared;
    public ListenerConfig Listeners { get; init; } = new();
    public InPodConfig InPod { get; init; } = new();
    public AccessLogFormat AccessLog { get; init; } = AccessLogFormat.Text;
    public TimeSpan CertificateLifetime { get; init; } = TimeSpan.FromHours(24);
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Server-side HBONE connections with no stream are closed after this long (see <see cref="MeshConfig.HboneIdleTimeout"/>).</summary>
    public TimeSpan HboneIdleTimeout { get; init; } = TimeSpan.FromMinutes(10);
    public string? StateDir { get; init; }
    /// <summary>Manifest files or directories (Kubernetes/Istio YAML) the file source reads, besides --manifests.</summary>
    public System.Collections.Immutable.ImmutableArray<string> Manifests { get; init; } = [];
    /// <summary>MCP registries listed under <c>mcp:</c>, besides --mcp-address.</summary>
    public System.Collections.Immutable.ImmutableArray<Sources.Mcp.McpRegistryOptions> Mcp { get; init; } = [];

    /// <summary>The names of the settings that differ between two values (for the "needs a restart" message).</summary>
    public IReadOnlyList<string> Differences(AgentSettings other)
    {
        var d = new List<string>();
        if (TrustDomain != other.TrustDomain) d.Add("trustDomain");
        if (CaCertFile != other.CaCertFile || CaKeyFile != other.CaKeyFile) d.Add("ca");
        if (Mode != other.Mode) d.Add("mode");
        if (!Equals(Listeners, other.Listeners)) d.Add("listeners");
        if (!Equals(InPod with { Namespaces = [] }, other.InPod with { Namespaces = [] }) || !InPod.Namespaces.SequenceEqual(other.InPod.Namespaces)) d.Add("inpod");
        if (AccessLog != other.AccessLog) d.Add("accessLog");
        if (CertificateLifetime != other.CertificateLifetime) d.Add("certificateLifetime");
        if (DrainTimeout != other.DrainTimeout) d.Add("drainTimeout");
        if (HboneIdleTimeout != other.HboneIdleTimeout) d.Add("hboneIdleTimeout");
        if (StateDir != other.StateDir) d.Add("stateDir");
        if (!Manifests.SequenceEqual(other.Manifests)) d.Add("manifests");
        if (!Mcp.SequenceEqual(other.Mcp)) d.Add("mcp");
        return d;
    }
}

/// <summary>
/// One parsed config file: Istio ztunnel's local config (workloads, services, policies) plus this project's keys.
/// The agent splits it: <see cref="Settings"/> (restart-only) and <see cref="Resources"/> (the file's share of the
/// mesh, one source among several). Immutable; a reload builds a new one.
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

    /// <summary>Manifest paths listed under <c>manifests:</c>.</summary>
    public ImmutableArray<string> Manifests { get; init; } = [];

    /// <summary>MCP registries listed under <c>mcp:</c>.</summary>
    public ImmutableArray<Sources.Mcp.McpRegistryOptions> Mcp { get; init; } = [];

    /// <summary>The file this was loaded from (for messages), or null.</summary>
    public string? SourcePath { get; init; }

    public AgentSettings Settings => new()
    {
        TrustDomain = TrustDomain,
        CaCertFile = CaCertFile,
        CaKeyFile = CaKeyFile,
        Mode = Mode,
        Listeners = Listeners,
        InPod = InPod,
        AccessLog = AccessLog,
        CertificateLifetime = CertificateLifetime,
        DrainTimeout = DrainTimeout,
        HboneIdleTimeout = HboneIdleTimeout,
        StateDir = StateDir,
        Manifests = Manifests,
        Mcp = Mcp,
    };

    public Sources.MeshResources Resources => new() { Workloads = Workloads, Services = Services, Policies = Policies };
}
