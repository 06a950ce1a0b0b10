using Ambient.Mesh.Config;
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
}
