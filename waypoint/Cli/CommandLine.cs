using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Cli;

/// <summary>The parsed command line; <see cref="Error"/> is set (and nothing else trusted) when it is malformed.</summary>
internal sealed record CommandLine
{
    public string? ConfigPath { get; init; }
    public string? GatewayNamespace { get; init; }
    public string? GatewayName { get; init; }
    public bool Validate { get; init; }
    public bool Help { get; init; }
    public bool Version { get; init; }
    public string? StateDir { get; init; }
    public ImmutableArray<string> Manifests { get; init; } = [];
    public bool Kubernetes { get; init; }
    public string? Kubeconfig { get; init; }
    public AccessLogFormat? AccessLog { get; init; }
    public LogLevel LogLevel { get; init; } = LogLevel.Information;
    public string? Error { get; init; }

    public const string Usage = """
        waypoint: the Ambient L7 proxy for a namespace (HBONE in, HTTP routing and L7 authorization, HBONE out)

        Usage:
          waypoint --gateway NS/NAME [--config FILE] [--manifests PATH] [options]
          waypoint --gateway NS/NAME --config FILE --validate

        Options:
          --gateway NS/NAME   The waypoint Gateway served (gatewayClassName istio-waypoint). Its identity is
                              spiffe://<trustDomain>/ns/NS/sa/NAME. Default: $GATEWAY_NAMESPACE/$GATEWAY_NAME.
          --config FILE       The same YAML config as ztunnel (trustDomain, ca, listeners.hbone/admin/metrics/
                              readiness, workloads, services, policies, manifests). Only listeners.hbone, admin,
                              metrics and readiness are used. Without it, the built-in defaults.
          --validate          Check the config file and the manifests, print every error, exit 0 when valid and 1
                              when not. Starts nothing.
          --manifests PATH    Kubernetes/Istio manifests (file or directory; repeatable): Services, Pods, the waypoint
                              Gateway, HTTPRoute, VirtualService, DestinationRule, AuthorizationPolicy... Watched:
                              a valid edit applies live, an invalid one is reported and the last good state stays.
          --kubernetes        Watch the Kubernetes API for the same kinds (KUBECONFIG, the pod's service account,
                              or ~/.kube/config).
          --kubeconfig FILE   Like --kubernetes, with this kubeconfig file.
          --state-dir DIR     Where the local CA is kept (default $AMBIENT_STATE_DIR or /var/lib/ambient).
          --access-log FMT    text (default), json or off: one line per request.
          --log-level LEVEL   trace, debug, info (default), warn, error.
          --version           Print the version.
          -h, --help          This help.

        Ports (defaults): 15008 HBONE (mTLS, client certificate required), 15000 admin (/config_dump,
        POST /quitquitquit), 15020 /metrics, 15021 /healthz/ready.
        SIGTERM drains: no new tunnels (GOAWAY), requests in flight finish within drainTimeout (default 5s), exit 0.
        """;

    public static CommandLine Parse(string[] args)
    {
        var cl = new CommandLine
        {
            GatewayNamespace = Environment.GetEnvironmentVariable("GATEWAY_NAMESPACE") is { Length: > 0 } ns ? ns : null,
            GatewayName = Environment.GetEnvironmentVariable("GATEWAY_NAME") is { Length: > 0 } n ? n : null,
            StateDir = Environment.GetEnvironmentVariable("AMBIENT_STATE_DIR") is { Length: > 0 } sd ? sd : null,
        };
        for (int i = 0; i < args.Length && cl.Error is null; i++)
        {
            string a = args[i];
            string? Next() => i + 1 < args.Length ? args[++i] : null;
            cl = a switch
            {
                "-h" or "--help" => cl with { Help = true },
                "--version" => cl with { Version = true },
                "--validate" => cl with { Validate = true },
                "--config" or "-c" => Next() is { } c ? cl with { ConfigPath = c } : cl with { Error = "--config needs a file path" },
                "--gateway" => ParseGateway(cl, Next()),
                "--state-dir" => Next() is { } d ? cl with { StateDir = d } : cl with { Error = "--state-dir needs a directory" },
                "--manifests" => Next() is { } m ? cl with { Manifests = cl.Manifests.Add(m) } : cl with { Error = "--manifests needs a file or directory" },
                "--kubeconfig" => Next() is { } k ? cl with { Kubeconfig = k, Kubernetes = true } : cl with { Error = "--kubeconfig needs a file" },
                "--kubernetes" => cl with { Kubernetes = true },
                "--access-log" => Next() switch
                {
                    "text" => cl with { AccessLog = AccessLogFormat.Text },
                    "json" => cl with { AccessLog = AccessLogFormat.Json },
                    "off" => cl with { AccessLog = AccessLogFormat.Off },
                    var v => cl with { Error = $"--access-log takes text, json or off, not '{v}'" },
                },
                "--log-level" => ParseLevel(cl, Next()),
                _ => cl with { Error = $"unknown argument '{a}'" },
            };
        }
        if (cl.Error is null && !cl.Help && !cl.Version && (cl.GatewayNamespace is null || cl.GatewayName is null))
        {
            cl = cl with { Error = "which waypoint? give --gateway NAMESPACE/NAME (the Gateway with gatewayClassName istio-waypoint)" };
        }
        if (cl.Error is null && cl.Validate && cl.ConfigPath is null && cl.Manifests.IsEmpty)
        {
            cl = cl with { Error = "--validate needs --config FILE or --manifests PATH" };
        }
        return cl;
    }

    private static CommandLine ParseGateway(CommandLine cl, string? value)
    {
        var parts = value?.Split('/') ?? [];
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            return cl with { Error = $"--gateway takes NAMESPACE/NAME, not '{value}'" };
        }
        return cl with { GatewayNamespace = parts[0], GatewayName = parts[1] };
    }

    private static CommandLine ParseLevel(CommandLine cl, string? value) => value?.ToLowerInvariant() switch
    {
        "trace" => cl with { LogLevel = LogLevel.Trace },
        "debug" => cl with { LogLevel = LogLevel.Debug },
        "info" or "information" => cl with { LogLevel = LogLevel.Information },
        "warn" or "warning" => cl with { LogLevel = LogLevel.Warning },
        "error" => cl with { LogLevel = LogLevel.Error },
        _ => cl with { Error = $"--log-level takes trace, debug, info, warn or error, not '{value}'" },
    };
}
