using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Config;

/// <summary>Log lines of the config file watcher (event ids 4500-4599).</summary>
internal static partial class ConfigLog
{
    [LoggerMessage(EventId = 4500, Level = LogLevel.Debug, Message = "config file watcher error; polling continues")]
    public static partial void WatcherError(ILogger logger, Exception? error);

    [LoggerMessage(EventId = 4501, Level = LogLevel.Warning, Message = "cannot watch {Directory} for changes; polling every {Interval}")]
    public static partial void CannotWatch(ILogger logger, Exception error, string directory, TimeSpan interval);

    [LoggerMessage(EventId = 4502, Level = LogLevel.Error, Message = "config reload of {Path} failed unexpectedly")]
    public static partial void ReloadFailed(ILogger logger, Exception error, string path);

    [LoggerMessage(EventId = 4503, Level = LogLevel.Warning, Message = "config warning: {Warning}")]
    public static partial void Warning(ILogger logger, ConfigError warning);

    [LoggerMessage(EventId = 4504, Level = LogLevel.Information, Message = "config {Path} reloaded: {Workloads} workloads, {Services} services, {Policies} policies")]
    public static partial void Reloaded(ILogger logger, string path, int workloads, int services, int policies);

    [LoggerMessage(EventId = 4505, Level = LogLevel.Warning, Message = "config {Path} is invalid; keeping the last good config. {Count} error(s), first: {First}")]
    public static partial void Invalid(ILogger logger, string path, int count, string first);

    [LoggerMessage(EventId = 4506, Level = LogLevel.Error, Message = "config change handler threw; the watcher keeps running")]
    public static partial void HandlerThrew(ILogger logger, Exception error);
}
