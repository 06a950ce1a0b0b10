using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Ambient.Mesh.ControlPlane;
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
    public string? CaAddress { get; init; }
    public string? CaRootCert { get; init; }
    public string? TokenFile { get; init; }
    public string? ClusterId { get; init; }
    public string? Error { get; init; }

    public const string Usage = """
        waypoint: the Ambient L7 proxy for a namespace (HBONE in, HTTP routing and L7 authorization, HBONE out)

        Usage:
          waypoint --gateway NS/NAME [--config FILE] [--manifests PATH] [options]
          waypoint --gateway NS/NAME --config FILE --validate
          waypoint generate --namespace NS [--name NAME] [--image IMAGE]   (see 'waypoint generate --help')

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
          --ca-address URL    Istio's CA (CreateCertificate): the waypoint's certificate comes from it instead of the
                              built-in CA, renewed at half-life (a failed renewal keeps the valid certificate and
                              retries). host:port or https://host:port verify the CA against --ca-root-cert;
                              http://host:port is plaintext, for tests and local use only. Default: $CA_ADDRESS,
                              else $XDS_ADDRESS (as Istio). Readiness waits for the first certificate.
          --ca-root-cert FILE PEM roots for an https CA (default $CA_ROOT_CA, else $XDS_ROOT_CA, else
                              /var/run/secrets/istio/root-cert.pem).
          --token-file FILE   Bearer token sent on every CA call, re-read per call (default $AUTH_TOKEN, else
                              /var/run/secrets/tokens/istio-token when a CA is set, except none for http://127.0.0.1:
                              the node agent's CA endpoint inside the waypoint's pod, which 'waypoint generate' uses
                              by default and which knows the pod by its network namespace).
          --cluster-id ID     'clusterid' call metadata (default $ISTIO_META_CLUSTER_ID, else Kubernetes).
                              TRUST_DOMAIN, when set, names the trust domain the identity is asked for.
          --state-dir DIR     Where the built-in CA is kept (default $AMBIENT_STATE_DIR or /var/lib/ambient).
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
                "--ca-address" => Next() is { } ca ? cl with { CaAddress = ca } : cl with { Error = "--ca-address needs a URL" },
                "--ca-root-cert" => Next() is { } root ? cl with { CaRootCert = root } : cl with { Error = "--ca-root-cert needs a file" },
                "--token-file" => Next() is { } t ? cl with { TokenFile = t } : cl with { Error = "--token-file needs a file" },
                "--cluster-id" => Next() is { } id ? cl with { ClusterId = id } : cl with { Error = "--cluster-id needs a value" },
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

    /// <summary>
    /// Where the waypoint's certificate comes from: Istio's variables as ztunnel reads them (CA_ADDRESS, else
    /// XDS_ADDRESS; CA_ROOT_CA; AUTH_TOKEN; ISTIO_META_CLUSTER_ID; TRUST_DOMAIN), these flags over them. Null = the
    /// built-in CA. Throws <see cref="FormatException"/> naming the flag or variable when an address is malformed.
    /// </summary>
    public ControlPlaneOptions? ControlPlane(IReadOnlyDictionary<string, string> env)
    {
        ControlPlaneOptions cp = ControlPlaneOptions.FromEnvironment(env);
        if (CaAddress is { } c)
        {
            cp = cp with { CaAddress = ControlPlaneOptions.ParseAddress(c, "--ca-address") };
        }
        if (CaRootCert is { } r)
        {
            cp = cp with { CaRootCert = r };
        }
        if (TokenFile is { } t)
        {
            cp = cp with { TokenFile = t };
        }
        else if (cp.CaAddress is { } local && IsNodeLocalCa(local) && !(env.TryGetValue("AUTH_TOKEN", out string? token) && !string.IsNullOrWhiteSpace(token)))
        {
            // The node agent's endpoint in the pod (waypoint generate's default) knows the pod by its network
            // namespace: no token to send, and none mounted.
            cp = cp with { TokenFile = null };
        }
        else if (cp.TokenFile is null && cp.CaAddress is not null)
        {
            cp = cp with { TokenFile = ControlPlaneOptions.DefaultTokenFile };
        }
        if (ClusterId is { } id)
        {
            cp = cp with { ClusterId = id };
        }
        // The waypoint reads the mesh from files or the Kubernetes API, not from xDS: only the CA side is kept.
        return cp.CaAddress is null ? null : cp with { XdsAddress = null };
    }

    /// <summary>Plain http to this pod's own loopback: the node agent's in-pod CA endpoint (ztunnel serves it to waypoint pods).</summary>
    public static bool IsNodeLocalCa(Uri address) => address.Scheme == Uri.UriSchemeHttp && address.IsLoopback;

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
