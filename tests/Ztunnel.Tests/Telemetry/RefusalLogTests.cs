using Ambient.Ztunnel.Telemetry;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.Telemetry;

/// <summary>Issue 13, finding 6: refusals are counted exactly and logged at most twice per reason and interval.</summary>
public sealed class RefusalLogTests
{
    [Fact]
    public void A_flood_of_one_reason_is_one_line_and_one_summary_per_interval_and_the_metric_counts_every_one()
    {
        var metrics = new MeshMetrics();
        var logs = new LogCapture();
        // The interval is ended by hand (Flush); the timer's own interval is longer than the test.
        using var log = new RefusalLog(metrics, logs.CreateLogger("proxy"), TimeSpan.FromHours(1));
        for (int i = 0; i < 1000; i++)
        {
            log.Refuse("hbone", "tls_handshake", $"HBONE connection {i} refused: TLS handshake not completed within 10 s");
        }
        log.Refuse("socks5", "dns", "SOCKS5 connection refused: cannot resolve nowhere.example");

        Assert.Equal(1000, metrics.RefusalCount("hbone", "tls_handshake"));
        Assert.Equal(1, metrics.RefusalCount("socks5", "dns"));
        Assert.Equal(2, logs.Lines.Count); // the first of each reason
        Assert.Contains("HBONE connection 0 refused", logs.Lines[0], StringComparison.Ordinal);

        log.Flush();
        Assert.Equal(3, logs.Lines.Count); // one summary: dns had nothing beyond its first
        Assert.Contains("999 more hbone connections refused (tls_handshake)", logs.Lines[2], StringComparison.Ordinal);
        Assert.Contains("HBONE connection 999 refused", logs.Lines[2], StringComparison.Ordinal);

        // A new interval logs its first refusal in full again.
        log.Refuse("hbone", "tls_handshake", "HBONE connection 1000 refused: TLS handshake not completed within 10 s");
        Assert.Equal(4, logs.Lines.Count);
        Assert.Equal(1001, metrics.RefusalCount("hbone", "tls_handshake"));
    }
}
