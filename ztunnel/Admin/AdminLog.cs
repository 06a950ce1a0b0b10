using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Admin;

/// <summary>Log lines of the admin, metrics and readiness ports (event ids 5500-5599).</summary>
internal static partial class AdminLog
{
    [LoggerMessage(EventId = 5500, Level = LogLevel.Error, Message = "admin handler for {Path} failed")]
    public static partial void HandlerFailed(ILogger logger, Exception exception, string path);
}
