using System.Collections.Immutable;
using System.Globalization;
using Ambient.InstallCni.Conflist;
using Microsoft.Extensions.Logging;

namespace Ambient.InstallCni.Cli;

/// <summary>What the process was asked to do.</summary>
internal enum InstallerCommand
{
    /// <summary>Install, then keep the install in place until SIGTERM (the DaemonSet container).</summary>
    Run,
    /// <summary>Install once and exit.</summary>
    Install,
    /// <summary>Remove the entry and the binary, then exit.</summary>
    Uninstall,
    /// <summary>Exit 0 when the install is in place (the readiness probe).</summary>
    Check,
}

/// <summary>What SIGTERM does to the install (README.md, "Restart or uninstall").</summary>
internal enum ExitAction
{
    /// <summary>Leave the entry and the binary: pods fail closed until a new installer and agent are back.</summary>
    Keep,
    /// <summary>Remove them.</summary>
    Uninstall,
    /// <summary>Ask the API server whether this installer's DaemonSet is being deleted (uninstall) or not (keep).</summary>
    Auto,
}

/// <summary>The installer's settings: flags, each with an environment variable as fallback (flags win).</summary>
internal sealed record InstallerOptions
{
    public InstallerCommand Command { get; init; } = InstallerCommand.Run;
    public string CniConfDir { get; init; } = "/host/etc/cni/net.d";
    public string CniBinDir { get; init; } = "/host/opt/cni/bin";
    public string PluginBinary { get; init; } = Path.Combine(AppContext.BaseDirectory, PluginEntry.PluginType);
    public ExitAction OnExit { get; init; } = ExitAction.Keep;
    public string? DaemonSet { get; init; }
    public string? PodNamespace { get; init; }
    public string? ApiServer { get; init; }
    public string TokenFile { get; init; } = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    public string CaFile { get; init; } = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
    public TimeSpan Resync { get; init; } = TimeSpan.FromSeconds(30);
    public LogLevel LogLevel { get; init; } = LogLevel.Information;
    public required PluginEntry Entry { get; init; }

    public const string Usage = """
        install-cni: keeps ambient-cni in this node's CNI chain (the CNI installer of the Ambient DaemonSet)

        Usage:
          install-cni [run] [options]       install, then re-install whenever another CNI rewrites its config,
                                            until SIGTERM (then --on-exit decides)
          install-cni install [options]     install once and exit
          install-cni uninstall [options]   remove the ambient-cni entry and binary, then exit
          install-cni check [options]       exit 0 when ambient-cni is installed as configured (readiness probe)

        Installing copies ambient-cni into the CNI bin dir (temp file + rename) and appends its entry as the last
        plugin of the primary CNI config: the first *.conf, *.conflist or *.json in the conf dir in sorted order,
        as container runtimes choose it. A .conf becomes a .conflist. Every other byte of the file is kept.

        Options (each also read from the environment variable after it; a flag wins):
          --cni-conf-dir DIR        the host's CNI config dir as mounted here        AMBIENT_CNI_CONF_DIR
                                    (default /host/etc/cni/net.d)
          --cni-bin-dir DIR         the host's CNI bin dir as mounted here           AMBIENT_CNI_BIN_DIR
                                    (default /host/opt/cni/bin)
          --plugin-binary FILE      the ambient-cni to install                       AMBIENT_CNI_PLUGIN_BINARY
                                    (default: ambient-cni next to install-cni)
          --on-exit ACTION          what SIGTERM does: keep (default), uninstall,    AMBIENT_CNI_ON_EXIT
                                    or auto (uninstall only when this installer's DaemonSet is being deleted,
                                    asked from the API server; keep on a restart or upgrade, or when unsure)
          --daemonset NAME          for auto: this installer's DaemonSet             AMBIENT_CNI_DAEMONSET
          --namespace NS            for auto: its namespace                          POD_NAMESPACE
          --api-server URL          for auto: https URL of the API server            (default: in-cluster,
                                    https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)
          --token-file FILE         for auto: bearer token (default: the pod's service account token)
          --ca-file FILE            for auto: the API server's CA (default: the service account's ca.crt)
          --resync SECONDS          also re-check this often, in case a file event  AMBIENT_CNI_RESYNC
                                    was missed (default 30; 0 = only on events)
          --log-level LEVEL         trace, debug, info (default), warn, error        AMBIENT_CNI_LOG_LEVEL

        The ambient-cni entry (paths are on the host, where the runtime runs the plugin):
          --agent-socket PATH       the agent's socket (default /var/run/ambient/cni.sock)        AMBIENT_CNI_AGENT_SOCKET
          --enrollment-file PATH    the agent's enrollment file                                   AMBIENT_CNI_ENROLLMENT_FILE
                                    (default /var/run/ambient/enrollment.json)
          --exclude-namespaces LIST comma-separated; pods there pass through                      AMBIENT_CNI_EXCLUDE_NAMESPACES
                                    (default kube-system and the installer's own namespace, where the agent runs)
          --agent-timeout SECONDS   the plugin's deadline for one agent exchange (default 30)     AMBIENT_CNI_AGENT_TIMEOUT
          --plugin-log-level LEVEL  debug, info (default), warn, error, none                      AMBIENT_CNI_PLUGIN_LOG_LEVEL
          --plugin-log-file PATH    the plugin also appends its log lines here                    AMBIENT_CNI_PLUGIN_LOG_FILE
          -h, --help                this help

        Exit status: 0 done (or installed, for check); 1 the install could not be made, undone or found;
        2 a usage error.
        """;

    /// <summary>One option: its flag, its environment variable (may be null) and how its value is applied.</summary>
    private sealed record Option(string Flag, string? Env, Func<Builder, string, string?> Apply);

    /// <summary>Mutable while parsing; every setter returns an error message or null.</summary>
    private sealed class Builder
    {
        public InstallerOptions Options = new() { Entry = DefaultEntry };
        public bool ExcludeSet;
    }

    private static readonly PluginEntry DefaultEntry = new()
    {
        AgentSocket = "/var/run/ambient/cni.sock",
        EnrollmentFile = "/var/run/ambient/enrollment.json",
        ExcludeNamespaces = ["kube-system"],
        AgentTimeoutSeconds = 30,
        LogLevel = "info",
    };

    private static readonly Option[] Options =
    [
        new("--cni-conf-dir", "AMBIENT_CNI_CONF_DIR", (b, v) => Absolute(v, "--cni-conf-dir", p => b.Options = b.Options with { CniConfDir = p })),
        new("--cni-bin-dir", "AMBIENT_CNI_BIN_DIR", (b, v) => Absolute(v, "--cni-bin-dir", p => b.Options = b.Options with { CniBinDir = p })),
        new("--plugin-binary", "AMBIENT_CNI_PLUGIN_BINARY", (b, v) => Absolute(v, "--plugin-binary", p => b.Options = b.Options with { PluginBinary = p })),
        new("--on-exit", "AMBIENT_CNI_ON_EXIT", (b, v) =>
        {
            ExitAction? action = v switch { "keep" => ExitAction.Keep, "uninstall" => ExitAction.Uninstall, "auto" => ExitAction.Auto, _ => null };
            if (action is null)
            {
                return $"--on-exit takes keep, uninstall or auto, not '{v}'";
            }

            b.Options = b.Options with { OnExit = action.Value };
            return null;
        }),
        new("--daemonset", "AMBIENT_CNI_DAEMONSET", (b, v) => NonEmpty(v, "--daemonset", s => b.Options = b.Options with { DaemonSet = s })),
        new("--namespace", "POD_NAMESPACE", (b, v) => NonEmpty(v, "--namespace", s => b.Options = b.Options with { PodNamespace = s })),
        new("--api-server", null, (b, v) =>
            Uri.TryCreate(v, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps
                ? Set(() => b.Options = b.Options with { ApiServer = v.TrimEnd('/') })
                : $"--api-server must be an https URL (the token is never sent in clear), not '{v}'"),
        new("--token-file", null, (b, v) => Absolute(v, "--token-file", p => b.Options = b.Options with { TokenFile = p })),
        new("--ca-file", null, (b, v) => Absolute(v, "--ca-file", p => b.Options = b.Options with { CaFile = p })),
        new("--resync", "AMBIENT_CNI_RESYNC", (b, v) =>
            double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s >= 0 && s <= 86400
                ? Set(() => b.Options = b.Options with { Resync = TimeSpan.FromSeconds(s) })
                : $"--resync takes seconds between 0 and 86400, not '{v}'"),
        new("--log-level", "AMBIENT_CNI_LOG_LEVEL", (b, v) =>
        {
            LogLevel? level = v switch
            {
                "trace" => LogLevel.Trace, "debug" => LogLevel.Debug, "info" => LogLevel.Information,
                "warn" => LogLevel.Warning, "error" => LogLevel.Error, _ => null,
            };
            return level is null
                ? $"--log-level takes trace, debug, info, warn or error, not '{v}'"
                : Set(() => b.Options = b.Options with { LogLevel = level.Value });
        }),
        new("--agent-socket", "AMBIENT_CNI_AGENT_SOCKET", (b, v) =>
            System.Text.Encoding.UTF8.GetByteCount(v) > 107
                ? $"--agent-socket '{v}' is longer than the 107 bytes a unix socket path may have"
                : Absolute(v, "--agent-socket", p => b.Options = b.Options with { Entry = b.Options.Entry with { AgentSocket = p } })),
        new("--enrollment-file", "AMBIENT_CNI_ENROLLMENT_FILE", (b, v) =>
            Absolute(v, "--enrollment-file", p => b.Options = b.Options with { Entry = b.Options.Entry with { EnrollmentFile = p } })),
        new("--exclude-namespaces", "AMBIENT_CNI_EXCLUDE_NAMESPACES", (b, v) =>
        {
            var names = v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToImmutableArray();
            b.ExcludeSet = true;
            b.Options = b.Options with { Entry = b.Options.Entry with { ExcludeNamespaces = names } };
            return null;
        }),
        new("--agent-timeout", "AMBIENT_CNI_AGENT_TIMEOUT", (b, v) =>
            double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s > 0 && s <= 3600
                ? Set(() => b.Options = b.Options with { Entry = b.Options.Entry with { AgentTimeoutSeconds = s } })
                : $"--agent-timeout takes seconds, 0 < n <= 3600, not '{v}'"),
        new("--plugin-log-level", "AMBIENT_CNI_PLUGIN_LOG_LEVEL", (b, v) =>
            v is "debug" or "info" or "warn" or "error" or "none"
                ? Set(() => b.Options = b.Options with { Entry = b.Options.Entry with { LogLevel = v } })
                : $"--plugin-log-level takes debug, info, warn, error or none, not '{v}'"),
        new("--plugin-log-file", "AMBIENT_CNI_PLUGIN_LOG_FILE", (b, v) =>
            Absolute(v, "--plugin-log-file", p => b.Options = b.Options with { Entry = b.Options.Entry with { LogFile = p } })),
    ];

    /// <summary>Parses the command line over the environment; the error says what is wrong and what to run next.</summary>
    public static (InstallerOptions? Options, bool Help, string? Error) Parse(string[] args, Func<string, string?> env)
    {
        var b = new Builder();
        foreach (var option in Options)
        {
            if (option.Env is { } name && env(name) is { Length: > 0 } value && option.Apply(b, value) is { } envError)
            {
                return (null, false, $"{name}: {envError}");
            }
        }

        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a is "-h" or "--help")
            {
                return (null, true, null);
            }

            if (i == 0 && !a.StartsWith('-'))
            {
                InstallerCommand? command = a switch
                {
                    "run" => InstallerCommand.Run,
                    "install" => InstallerCommand.Install,
                    "uninstall" => InstallerCommand.Uninstall,
                    "check" => InstallerCommand.Check,
                    _ => null,
                };
                if (command is null)
                {
                    return (null, false, $"unknown command '{a}' (run, install, uninstall or check)");
                }

                b.Options = b.Options with { Command = command.Value };
                continue;
            }

            string flag = a, value;
            int eq = a.IndexOf('=', StringComparison.Ordinal);
            if (a.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                flag = a[..eq];
                value = a[(eq + 1)..];
            }
            else if (i + 1 < args.Length)
            {
                value = args[++i];
            }
            else
            {
                return (null, false, Array.Exists(Options, o => o.Flag == a) ? $"{a} needs a value" : $"unknown argument '{a}'");
            }

            var match = Array.Find(Options, o => o.Flag == flag);
            if (match is null)
            {
                return (null, false, $"unknown argument '{flag}'");
            }

            if (match.Apply(b, value) is { } error)
            {
                return (null, false, error);
            }
        }

        var options = b.Options;
        if (!b.ExcludeSet && options.PodNamespace is { } own && !options.Entry.ExcludeNamespaces.Contains(own))
        {
            // The agent's own pod goes through this CNI chain; were its namespace not excluded, the plugin would
            // wait for the very agent it is starting (error 11 until the end of time).
            options = options with { Entry = options.Entry with { ExcludeNamespaces = options.Entry.ExcludeNamespaces.Add(own) } };
        }

        if (options.OnExit == ExitAction.Auto && options.Command == InstallerCommand.Run)
        {
            if (options.DaemonSet is null || options.PodNamespace is null)
            {
                return (null, false, "--on-exit auto needs --daemonset NAME and --namespace NS (or POD_NAMESPACE) to find this installer's DaemonSet");
            }

            if (options.ApiServer is null)
            {
                string? host = env("KUBERNETES_SERVICE_HOST"), port = env("KUBERNETES_SERVICE_PORT");
                if (string.IsNullOrEmpty(host))
                {
                    return (null, false, "--on-exit auto needs the API server: run in a pod (KUBERNETES_SERVICE_HOST) or pass --api-server");
                }

                string hostPart = host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host;
                options = options with { ApiServer = $"https://{hostPart}:{(string.IsNullOrEmpty(port) ? "443" : port)}" };
            }
        }

        return (options, false, null);
    }

    private static string? Set(Action apply)
    {
        apply();
        return null;
    }

    private static string? Absolute(string value, string flag, Action<string> apply) =>
        Path.IsPathFullyQualified(value) ? Set(() => apply(value)) : $"{flag} must be an absolute path, not '{value}'";

    private static string? NonEmpty(string value, string flag, Action<string> apply) =>
        value.Length > 0 ? Set(() => apply(value)) : $"{flag} needs a value";
}
