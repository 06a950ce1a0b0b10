using Ambient.Mesh.Config;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel;

/// <summary>What the command line (or a test) gives the agent besides the config file itself.</summary>
internal sealed record AgentOptions
{
    /// <summary>The config file to watch; null = the embedded default (not watched).</summary>
    public string? ConfigPath { get; init; }

    /// <summary>This node's name (workloads with this <c>node</c> are local); empty = every workload is local.</summary>
    public string NodeName { get; init; } = "";

    public string? StateDir { get; init; }

    /// <summary>Manifest paths from the command line (added to the config's <c>manifests:</c>).</summary>
    public System.Collections.Immutable.ImmutableArray<string> Manifests { get; init; } = [];

    /// <summary>Watch the Kubernetes API (null = not).</summary>
    public Mesh.Kubernetes.Api.KubernetesApiOptions? Kubernetes { get; init; }

    /// <summary>Istio's control plane (xDS source, CA): null or no addresses = local mode.</summary>
    public Mesh.ControlPlane.ControlPlaneOptions? ControlPlane { get; init; }

    /// <summary>MCP registries (config file's <c>mcp:</c> list, then --mcp-address), one store source each.</summary>
    public System.Collections.Immutable.ImmutableArray<Mesh.Sources.Mcp.McpRegistryOptions> Mcp { get; init; } = [];

    /// <summary>Control plane reconnect delays; null = Istio's (tests shorten them).</summary>
    public Mesh.ControlPlane.Backoff? ControlPlaneBackoff { get; init; }

    public AccessLogFormat? AccessLog { get; init; }

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Where access log lines go (stdout by default).</summary>
    public TextWriter? AccessLogWriter { get; init; }

    /// <summary>DNS for SOCKS5 names that are not mesh services; null = the system resolver (tests replace it).</summary>
    public Func<string, CancellationToken, Task<System.Net.IPAddress[]>>? ResolveHost { get; init; }

    /// <summary>Default location for the generated CA and the in-pod registry.</summary>
    public static string DefaultStateDir =>
        Environment.GetEnvironmentVariable("AMBIENT_STATE_DIR") is { Length: > 0 } d ? d : "/var/lib/ambient";
}
