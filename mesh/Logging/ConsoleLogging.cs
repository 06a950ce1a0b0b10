using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Logging;

/// <summary>The console log format of every Ambient process (ztunnel, waypoint): one line a record, UTC timestamps.</summary>
public static class ConsoleLogging
{
    /// <summary>
    /// Adds the console sink, or lets <paramref name="custom"/> (tests, embedding) set up logging instead. Every level
    /// goes to standard error, so standard output stays free for what a command prints.
    /// </summary>
    public static ILoggingBuilder AddAmbientConsole(this ILoggingBuilder logging, Action<ILoggingBuilder>? custom = null)
    {
        if (custom is not null)
        {
            custom(logging);
            return logging;
        }

        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        return logging;
    }
}
