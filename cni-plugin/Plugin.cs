using Ambient.Cni.Commands;

namespace Ambient.Cni;

/// <summary>
/// One CNI invocation end to end: environment and stdin in, a result or an error object on stdout, an exit
/// code out. Separate from Program so tests can drive it with their own streams.
/// </summary>
internal static class Plugin
{
    // A conflist plus a prevResult is a few KiB; refuse to buffer unbounded input from a broken runtime.
    private const int MaxStdinBytes = 16 * 1024 * 1024;

    public const string Usage = """
        ambient-cni: chained CNI plugin of the Ambient mesh.

        It is run by the container runtime (kubelet/containerd/CRI-O), not by hand: the runtime sets
        CNI_COMMAND (ADD, DEL, CHECK, VERSION, STATUS, GC), CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and
        CNI_ARGS, writes the network configuration as JSON to stdin and reads the result from stdout.
        ADD asks the node agent to capture the pod's traffic and passes the previous plugin's result on.

        Configuration keys (in the plugin's entry of the conflist):
          agentSocket          unix socket of the node agent    (default /var/run/ambient/cni.sock)
          enrollmentFile       agent-written enrollment list     (default /var/run/ambient/enrollment.json)
          excludeNamespaces    namespaces never captured         (default ["kube-system"])
          agentTimeoutSeconds  time to wait for the agent        (default 30)
          logLevel             debug, info, warn, error, none    (default info)
          logFile              also append log lines to this file

        Try it:  echo '{"cniVersion":"1.1.0"}' | CNI_COMMAND=VERSION ambient-cni
        """;

    public static async Task<int> RunAsync(string[] args, CniEnvironment env, Stream stdin, Stream stdout, TextWriter stderr)
    {
        if (Array.Exists(args, a => a is "--help" or "-h"))
        {
            await WriteAsync(stdout, System.Text.Encoding.UTF8.GetBytes(Usage + "\n"));
            return 0;
        }

        using var log = new PluginLog(stderr);
        string errorVersion = CniVersions.Latest;
        try
        {
            if (env.Command is null)
            {
                throw new CniException(
                    CniErrorCode.InvalidEnvironment,
                    "CNI_COMMAND is not set",
                    "ambient-cni is a CNI plugin run by the container runtime; run 'ambient-cni --help' for usage");
            }

            if (!CniCommandNames.TryParse(env.Command, out var command))
            {
                throw new CniException(
                    CniErrorCode.InvalidEnvironment,
                    $"unknown CNI_COMMAND \"{env.Command}\"",
                    "expected ADD, DEL, CHECK, VERSION, STATUS or GC");
            }

            if (command == CniCommand.Version)
            {
                await WriteAsync(stdout, VersionCommand.Run());
                return 0;
            }

            var config = CniConfig.Parse(await ReadStdinAsync(stdin));
            errorVersion = config.CniVersion;
            log.Configure(config.LogLevel, config.LogFile);
            RequireVersionFor(command, config.CniVersion);
            env.Validate(command);
            var cniArgs = command is CniCommand.Status or CniCommand.Gc ? CniArgs.Empty : CniArgs.Parse(env.Args);

            var ctx = new CommandContext(command, env, cniArgs, config, log, CancellationToken.None);
            log.SetScope(command is CniCommand.Status or CniCommand.Gc ? $"{command.ToWire()}: " : $"{command.ToWire()} {ctx.PodLabel}: ");
            log.Debug($"config cniVersion {config.CniVersion}, agent {config.AgentSocket}");

            byte[]? output = null;
            switch (command)
            {
                case CniCommand.Add: output = await AddCommand.RunAsync(ctx); break;
                case CniCommand.Del: await DelCommand.RunAsync(ctx); break;
                case CniCommand.Check: await CheckCommand.RunAsync(ctx); break;
                case CniCommand.Status: await StatusCommand.RunAsync(ctx); break;
                case CniCommand.Gc: await GcCommand.RunAsync(ctx); break;
            }

            if (output is not null)
            {
                await WriteAsync(stdout, output);
            }

            return 0;
        }
        catch (CniException ex)
        {
            log.Error($"error {(uint)ex.Code}: {ex.Message}{(ex.Details is null ? "" : $" ({ex.Details})")}");
            return await WriteErrorAsync(stdout, new CniErrorResult(errorVersion, (uint)ex.Code, ex.Message, ex.Details));
        }
        catch (Exception ex)
        {
            log.Error($"unexpected failure: {ex}");
            return await WriteErrorAsync(stdout, new CniErrorResult(errorVersion, (uint)CniErrorCode.Internal, $"internal error in ambient-cni: {ex.Message}", ex.GetType().FullName));
        }
    }

    private static void RequireVersionFor(CniCommand command, string version)
    {
        string? minimum = command switch
        {
            CniCommand.Check => CniVersions.MinForCheck,
            CniCommand.Status or CniCommand.Gc => CniVersions.MinForGcAndStatus,
            _ => null,
        };
        if (minimum is not null && !CniVersions.AtLeast(version, minimum))
        {
            // Same code and wording libcni's skel uses, so runtimes and operators recognise it.
            throw new CniException(CniErrorCode.IncompatibleVersion, $"config version does not allow {command.ToWire()}", $"{command.ToWire()} needs cniVersion {minimum} or later; the config has {version}");
        }
    }

    private static async Task<byte[]> ReadStdinAsync(Stream stdin)
    {
        try
        {
            using var buffer = new MemoryStream();
            byte[] chunk = new byte[16 * 1024];
            int read;
            while ((read = await stdin.ReadAsync(chunk)) > 0)
            {
                if (buffer.Length + read > MaxStdinBytes)
                {
                    throw new CniException(CniErrorCode.InvalidConfig, $"network configuration on stdin is larger than {MaxStdinBytes} bytes");
                }

                buffer.Write(chunk, 0, read);
            }

            return buffer.ToArray();
        }
        catch (IOException ex)
        {
            throw new CniException(CniErrorCode.IoFailure, $"cannot read the network configuration from stdin: {ex.Message}");
        }
    }

    private static async Task<int> WriteErrorAsync(Stream stdout, CniErrorResult error)
    {
        try
        {
            await WriteAsync(stdout, JsonContext.ToLine(error, JsonContext.Default.CniErrorResult));
        }
        catch (IOException)
        {
            // Nowhere left to report it; the exit code still tells the runtime.
        }

        return 1;
    }

    private static async Task WriteAsync(Stream stdout, byte[] bytes)
    {
        await stdout.WriteAsync(bytes);
        await stdout.FlushAsync();
    }
}
