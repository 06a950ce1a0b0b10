using Microsoft.Extensions.Logging;

namespace Ambient.InstallCni;

/// <summary>The installer's log lines (event ids 1xx install, 2xx watch, 3xx exit).</summary>
internal static partial class Log
{
    [LoggerMessage(100, LogLevel.Information, "install-cni starting: conf dir {ConfDir}, bin dir {BinDir}, on SIGTERM: {OnExit}; entry {Entry}")]
    public static partial void Starting(ILogger logger, string confDir, string binDir, string onExit, string entry);

    [LoggerMessage(106, LogLevel.Information, "copied {Binary} from {Source}")]
    public static partial void BinaryCopied(ILogger logger, string binary, string source);

    [LoggerMessage(101, LogLevel.Information, "{Detail}")]
    public static partial void Installed(ILogger logger, string detail);

    [LoggerMessage(102, LogLevel.Debug, "{Detail}")]
    public static partial void InPlace(ILogger logger, string detail);

    [LoggerMessage(103, LogLevel.Warning, "{Detail}")]
    public static partial void NoConfig(ILogger logger, string detail);

    [LoggerMessage(104, LogLevel.Error, "refusing to edit the primary CNI config: {Detail}")]
    public static partial void Refused(ILogger logger, string detail);

    [LoggerMessage(105, LogLevel.Error, "install pass failed, will retry on the next change or resync: {Message}")]
    public static partial void InstallFailed(ILogger logger, string message);

    [LoggerMessage(200, LogLevel.Information, "watching {ConfDir} and {BinDir} (resync every {Resync})")]
    public static partial void Watching(ILogger logger, string confDir, string binDir, TimeSpan resync);

    [LoggerMessage(201, LogLevel.Debug, "file event: {Change} {Path}")]
    public static partial void FileEvent(ILogger logger, WatcherChangeTypes change, string path);

    [LoggerMessage(202, LogLevel.Warning, "file watch error ({Message}); re-checking everything")]
    public static partial void WatchError(ILogger logger, string message);

    [LoggerMessage(300, LogLevel.Information, "--on-exit auto: at start-up {Detail}")]
    public static partial void StartupProbe(ILogger logger, string detail);

    [LoggerMessage(301, LogLevel.Warning, "--on-exit auto: at start-up {Detail}; on SIGTERM the install will be kept unless the API server then says the DaemonSet is gone")]
    public static partial void StartupProbeFailed(ILogger logger, string detail);

    [LoggerMessage(302, LogLevel.Information, "stopping: uninstall ({Reason})")]
    public static partial void ExitUninstall(ILogger logger, string reason);

    [LoggerMessage(303, LogLevel.Information, "stopping: leaving ambient-cni installed so new pods fail closed until the installer and agent are back ({Reason})")]
    public static partial void ExitKeep(ILogger logger, string reason);

    [LoggerMessage(304, LogLevel.Information, "uninstall: {Change}")]
    public static partial void Uninstalled(ILogger logger, string change);

    [LoggerMessage(305, LogLevel.Error, "uninstall: {Problem}")]
    public static partial void UninstallProblem(ILogger logger, string problem);
}
