using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Telemetry;

/// <summary>
/// Connections refused before they could be attributed (a TLS handshake that never completes, garbage on 15008, a
/// bad SOCKS5 greeting, a destination that is the agent itself): counted exactly in
/// <c>ambient_connections_refused_total{listener,reason}</c>, and logged without flooding. Under attack one line per
/// connection is thousands of identical warnings (issue 13), so per (listener, reason) and interval the first refusal
/// is logged in full and the rest as one summary line with their count at the end of the interval.
/// </summary>
internal sealed partial class RefusalLog : IDisposable
{
    /// <summary>At most two lines per (listener, reason) per interval: the first refusal, then the summary.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    private readonly MeshMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeSpan _interval;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Listener, string Reason), Window> _windows = [];
    private readonly ITimer _timer;

    public RefusalLog(MeshMetrics metrics, ILogger logger, TimeSpan? interval = null, TimeProvider? time = null)
    {
        _metrics = metrics;
        _logger = logger;
        _interval = interval ?? DefaultInterval;
        _timer = (time ?? TimeProvider.System).CreateTimer(static s => ((RefusalLog)s!).Flush(), this, _interval, _interval);
    }

    /// <summary>Counts the refusal and logs it (or adds it to this interval's summary).</summary>
    /// <param name="listener">The metric's listener label (hbone, socks5, outbound, inbound).</param>
    /// <param name="reason">The metric's reason label (tls_handshake, bad_handshake, dns, loop...).</param>
    /// <param name="detail">The whole sentence for the log: what was refused and why.</param>
    public void Refuse(string listener, string reason, string detail)
    {
        _metrics.Refused(listener, reason);
        lock (_lock)
        {
            if (_windows.TryGetValue((listener, reason), out var window))
            {
                window.Suppressed++;
                window.Last = detail;
                return;
            }
            _windows[(listener, reason)] = new Window();
        }
        Log.Refused(_logger, detail);
    }

    /// <summary>Ends the interval: one summary line per (listener, reason) that had more than its first refusal.</summary>
    internal void Flush()
    {
        List<(string Listener, string Reason, Window Window)>? summaries = null;
        lock (_lock)
        {
            foreach (var (key, window) in _windows)
            {
                if (window.Suppressed > 0)
                {
                    (summaries ??= []).Add((key.Listener, key.Reason, window));
                }
            }
            _windows.Clear();
        }
        if (summaries is null)
        {
            return;
        }
        foreach (var (listener, reason, window) in summaries)
        {
            Log.Summary(_logger, window.Suppressed, listener, reason, _interval.TotalSeconds, window.Last!);
        }
    }

    public void Dispose()
    {
        _timer.Dispose();
        Flush();
    }

    private sealed class Window
    {
        public long Suppressed;
        public string? Last;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 5100, Level = LogLevel.Warning, Message = "{Detail}")]
        public static partial void Refused(ILogger logger, string detail);

        [LoggerMessage(EventId = 5101, Level = LogLevel.Warning,
            Message = "{Count} more {Listener} connections refused ({Reason}) in the last {Seconds} s, not logged one by one; the last: {Last}")]
        public static partial void Summary(ILogger logger, long count, string listener, string reason, double seconds, string last);
    }
}
