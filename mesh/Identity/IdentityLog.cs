using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Identity;

/// <summary>Identity log events; ids 3000-3099 belong to this area.</summary>
internal static partial class IdentityLog
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "Issued certificate for {Id}, valid until {NotAfter:u}, renewal at {RenewAt:u}")]
    public static partial void Issued(ILogger logger, SpiffeId id, DateTimeOffset notAfter, DateTimeOffset renewAt);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Renewing the certificate for {Id} failed (attempt {Attempt}); keeping the current one (valid until {NotAfter:u}), retrying in {Delay}")]
    public static partial void RenewalFailed(ILogger logger, Exception exception, SpiffeId id, int attempt, DateTimeOffset notAfter, TimeSpan delay);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "The certificate for {Id} expired at {NotAfter:u} without being renewed; re-issuing on next use")]
    public static partial void Expired(ILogger logger, SpiffeId id, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Issuing a certificate for {Id} failed")]
    public static partial void IssueFailed(ILogger logger, Exception exception, SpiffeId id);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Error, Message = "RenewalFailed handler threw")]
    public static partial void RenewalHandlerThrew(ILogger logger, Exception error);
}
