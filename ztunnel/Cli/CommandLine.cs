using Ambient.Mesh.Config;
using Ambient.Mesh.ControlPlane;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Cli;

/// <summary>The parsed command line; <see cref="Error"/> is set (and nothing else trusted) when it is malformed.</summary>
internal sealed record CommandLine
{
    public string? ConfigPath { get; init; }
    public bool Validate { get; init; }
    public bool Help { get; init; }
    public bool Version { get; init; }
    public string NodeName { get; init; } = Environment.GetEnvironmentVariable("NODE_NAME") ?? "";
    public string? StateDir { get; init; }
    /// <summary>--manifests paths (repeatable), besides the config file's <c>manifests:</c>.</summary>
    public System.Collections.Immutable.ImmutableArray<string> Manifests { get; init; } = [];
    /// <summary>Watch the Kubernetes API (--kubernetes, or --kubeconfig FILE).</summary>
    public bool Kubernetes { get; init; }
    public string? Kubeconfig { get; init; }
    /// <summary>--xds-address, --ca-address, --xds-root-cert, --token-file, --cluster-id (over Istio's env vars).</summary>
    public string? XdsAddress { get; init; }
    public string? CaAddress { get; init; }
    public string? XdsRootCert { get; init; }
    public string? TokenFile { get; init; }
    public string? ClusterId { get; init; }
    /// <summary>--mcp-address values (repeatable), parsed by <see cref="McpRegistries"/>.</summary>
    public System.Collections.Immutable.ImmutableArray<string> McpAddresses { get; init; } = [];
    public AccessLogFormat? AccessLog { get; init; }
    public LogLevel LogLevel { get; init; } = LogLevel.Information;
    public string? Error { get; init; }

    public const string Usage = """
        ztunnel: the Ambient node agent (HBONE mTLS tunnels, L4 policy, telemetry for the workloads on this node)

        Usage:
          ztunnel [--config FILE] [--node NAME] [options]
          ztunnel --config FILE --validate

        Options:
          --config FILE       YAML config: Istio ztunnel's local config (workloads, services, policies) plus
                              Ambient's keys (trustDomain, ca, mode, listeners, ...). Watched: valid edits apply
                              live, invalid ones are reported and the last good config stays.
                              Without it the embedded default config is used.
          --validate          Check the config file, print every error (file:line:column: field: message), and
                              exit 0 when valid, 1 when not. Starts nothing.
          --manifests PATH    Kubernetes/Istio manifests (a file, or a directory of .yaml/.yml/.json files; several
                              '---' documents per file): Namespaces, Pods, Services, EndpointSlices, ServiceEntry,
                              WorkloadEntry, AuthorizationPolicy, PeerAuthentication, waypoint Gateways and the L7
                              kinds. Repeatable; also the config key 'manifests:'. Watched like the config file.
          --kubernetes        Watch the Kubernetes API for the same kinds (list + watch; KUBECONFIG, else the pod's
                              service account in a cluster, else ~/.kube/config). Readiness waits for the first
                              list of every kind; while the API server is unreachable the last state is kept.
          --kubeconfig FILE   Like --kubernetes, with this kubeconfig file.
          --xds-address URL   Istio's control plane (istiod): Delta xDS for workloads, services and L4 policies, as
                              Istio's ztunnel gets them. host:port or https://host:port verify istiod's certificate
                              against --xds-root-cert; http://host:port is plaintext, for tests and local use only.
                              Default: $XDS_ADDRESS. Readiness waits for the first push of each type.
          --ca-address URL    Istio's CA (CreateCertificate): workload certificates come from it instead of the
                              built-in CA, so no node holds a CA key. Default: $CA_ADDRESS, else the xDS address.
                              With it, the agent does not sign for waypoint pods either (in-pod mode, built-in CA
                              only: Istio's CA API on 127.0.0.1:15012 inside each waypoint pod, for the pod's own
                              service account); waypoints then ask istiod themselves.
          --xds-root-cert FILE  PEM roots for https control planes (default $XDS_ROOT_CA, else
                              /var/run/secrets/istio/root-cert.pem; the CA uses $CA_ROOT_CA, else the same).
          --token-file FILE   Bearer token sent on every control plane call, re-read per call (default $AUTH_TOKEN,
                              else /var/run/secrets/tokens/istio-token when a control plane is set).
          --cluster-id ID     'clusterid' call metadata and node CLUSTER_ID (default $ISTIO_META_CLUSTER_ID, else
                              Kubernetes). POD_NAME, POD_NAMESPACE, INSTANCE_IP, NODE_NAME, SERVICE_ACCOUNT,
                              TRUST_DOMAIN and ISTIO_META_* are read as Istio's ztunnel reads them.
          --mcp-address SPEC  An MCP registry (Nacos, a Consul bridge, ...): ServiceEntry and WorkloadEntry over
                              state-of-the-world ADS, type URLs networking.istio.io/v1/ServiceEntry and
                              .../WorkloadEntry. Repeatable, one store source 'mcp:NAME' each; also the config
                              key 'mcp:'. SPEC is a URL, or comma-separated key=value pairs:
                                name=nacos,url=http://127.0.0.1:18848,precedence=25,version=v1alpha3,staleAfter=5m
                              precedence (default 20, below the Kubernetes API and istiod at 30): a host, workload
                              or object two sources publish is taken from the higher one, on a tie from the
                              registry listed first (config file's list, then the flags); every such conflict is
                              logged and shown in /config_dump and ambient_mesh_source_shadowed. version: v1
                              (default), v1beta1 or v1alpha3 (Nacos). staleAfter (default 5m): a registry away
                              that long has its objects withdrawn. Also rootCert=FILE (https), tokenFile=FILE.
          --node NAME         This node's name: workloads whose 'node' is NAME are served here. Default: $NODE_NAME,
                              or empty = every workload in the config is local.
          --state-dir DIR     Where the generated CA is kept (default $AMBIENT_STATE_DIR or /var/lib/ambient).
          --access-log FMT    text (default), json or off.
          --log-level LEVEL   trace, debug, info (default), warn, error.
          --version           Print the version.
          -h, --help          This help.

        Ports (defaults): 15001 outbound, 15006 inbound plaintext, 15008 HBONE, 15080 SOCKS5,
        15000 admin (/config_dump, /quitquitquit, /logging), 15020 /metrics, 15021 /healthz/ready.
        SIGTERM or POST /quitquitquit drains open connections (drainTimeout, default 5s) and exits 0.
        """;

    public static CommandLine Parse(string[] args)
    {
        var cl = new CommandLine();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string? Next()
            {
                if (i + 1 >= args.Length)
                {
                    return null;
                }
                return args[++i];
            }
            switch (a)
            {
                case "-h" or "--help":
                    cl = cl with { Help = true };
                    break;
                case "--version":
                    cl = cl with { Version = true };
                    break;
                case "--validate":
                    cl = cl with { Validate = true };
                    break;
                case "--config" or "-c":
                    cl = Next() is { } c ? cl with { ConfigPath = c } : cl with { Error = "--config needs a file path" };
                    break;
                case "--node":
                    cl = Next() is { } n ? cl with { NodeName = n } : cl with { Error = "--node needs a name" };
                    break;
                case "--state-dir":
                    cl = Next() is { } d ? cl with { StateDir = d } : cl with { Error = "--state-dir needs a directory" };
                    break;
                case "--manifests":
                    cl = Next() is { } m ? cl with { Manifests = cl.Manifests.Add(m) } : cl with { Error = "--manifests needs a file or directory" };
                    break;
                case "--kubeconfig":
                    cl = Next() is { } k ? cl with { Kubeconfig = k, Kubernetes = true } : cl with { Error = "--kubeconfig needs a file" };
                    break;
                case "--kubernetes":
                    cl = cl with { Kubernetes = true };
                    break;
                case "--xds-address":
                    cl = Next() is { } x ? cl with { XdsAddress = x } : cl with { Error = "--xds-address needs a URL (https://istiod.istio-system.svc:15012)" };
                    break;
                case "--ca-address":
                    cl = Next() is { } ca ? cl with { CaAddress = ca } : cl with { Error = "--ca-address needs a URL (https://istiod.istio-system.svc:15012)" };
                    break;
                case "--xds-root-cert":
                    cl = Next() is { } r ? cl with { XdsRootCert = r } : cl with { Error = "--xds-root-cert needs a PEM file" };
                    break;
                case "--token-file":
                    cl = Next() is { } t ? cl with { TokenFile = t } : cl with { Error = "--token-file needs a file" };
                    break;
                case "--cluster-id":
                    cl = Next() is { } id ? cl with { ClusterId = id } : cl with { Error = "--cluster-id needs an id" };
                    break;
                case "--mcp-address":
                    cl = Next() is { } mcp ? cl with { McpAddresses = cl.McpAddresses.Add(mcp) } : cl with { Error = "--mcp-address needs a URL or name=...,url=...,precedence=..." };
                    break;
                case "--access-log":
                    cl = Next() switch
                    {
                        "text" => cl with { AccessLog = AccessLogFormat.Text },
                        "json" => cl with { AccessLog = AccessLogFormat.Json },
                        "off" => cl with { AccessLog = AccessLogFormat.Off },
                        var v => cl with { Error = $"--access-log takes text, json or off, not '{v}'" },
                    };
                    break;
                case "--log-level":
                    string? lv = Next();
                    cl = lv is not null && Admin.LogLevelSwitch.TryParse(lv, out var level)
                        ? cl with { LogLevel = level }
                        : cl with { Error = $"--log-level takes trace, debug, info, warn or error, not '{lv}'" };
                    break;
                default:
                    cl = cl with { Error = $"unknown argument '{a}'" };
                    break;
            }
            if (cl.Error is not null)
            {
                break;
            }
        }
        if (cl.Error is null && cl.Validate && cl.ConfigPath is null)
        {
            cl = cl with { Error = "--validate needs --config FILE" };
        }
        return cl;
    }

    /// <summary>
    /// The registries of the config file's <c>mcp:</c> list, then those of --mcp-address. Throws
    /// <see cref="FormatException"/> naming the flag when a value is malformed or a name is used twice.
    /// </summary>
    public System.Collections.Immutable.ImmutableArray<Mesh.Sources.Mcp.McpRegistryOptions> McpRegistries(System.Collections.Immutable.ImmutableArray<Mesh.Sources.Mcp.McpRegistryOptions> fromConfig)
    {
        var all = fromConfig.ToBuilder();
        for (int i = 0; i < McpAddresses.Length; i++)
        {
            var registry = Mesh.Sources.Mcp.McpRegistryOptions.Parse(McpAddresses[i], fromConfig.Length + i);
            if (all.Any(r => r.Name == registry.Name))
            {
                throw new FormatException($"--mcp-address: the name '{registry.Name}' is used by another registry; give each one name=...");
            }
            all.Add(registry);
        }
        return all.ToImmutable();
    }

    /// <summary>
    /// Istio's environment variables with these flags over them; null when no control plane is configured. Throws
    /// <see cref="FormatException"/> naming the flag or variable when an address is malformed.
    /// </summary>
    public ControlPlaneOptions? ControlPlane(IReadOnlyDictionary<string, string> env)
    {
        ControlPlaneOptions cp = ControlPlaneOptions.FromEnvironment(env);
        if (XdsAddress is { } x)
        {
            Uri xds = ControlPlaneOptions.ParseAddress(x, "--xds-address");
            // CA_ADDRESS defaults to the xDS address, as in Istio.
            cp = cp with { XdsAddress = xds, CaAddress = env.ContainsKey("CA_ADDRESS") ? cp.CaAddress : xds };
        }
        if (CaAddress is { } c)
        {
            cp = cp with { CaAddress = ControlPlaneOptions.ParseAddress(c, "--ca-address") };
        }
        if (XdsRootCert is { } r)
        {
            cp = cp with { XdsRootCert = r, CaRootCert = env.ContainsKey("CA_ROOT_CA") ? cp.CaRootCert : r };
        }
        if (TokenFile is { } t)
        {
            cp = cp with { TokenFile = t };
        }
        else if (cp.TokenFile is null && (cp.XdsAddress is not null || cp.CaAddress is not null))
        {
            cp = cp with { TokenFile = ControlPlaneOptions.DefaultTokenFile };
        }
        if (ClusterId is { } id)
        {
            cp = cp with { ClusterId = id };
        }
        if (cp.NodeName.Length == 0)
        {
            cp = cp with { NodeName = NodeName };
        }
        return cp.XdsAddress is null && cp.CaAddress is null ? null : cp;
    }
}
