using System.Net.Sockets;
using System.Text.RegularExpressions;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.BadInput;

/// <summary>
/// Issue 13, finding 6: connections that never start TLS are refused with the real reason ("TLS handshake not
/// completed within 10 s", not "The operation was canceled"), counted one by one in the metric, and logged without a
/// line per connection.
/// </summary>
public sealed partial class HandshakeTimeoutLogTests
{
    private const string Reason = "TLS handshake not completed within 10 s";

    [Fact]
    public async Task Silent_connections_are_logged_with_the_reason_and_summarised_while_the_metric_counts_each()
    {
        var logs = new LogCapture();
        await using var mesh = await TwoNodeMesh.StartAsync(loggers: logs);
        long before = await BadInputAssertions.RefusedAsync(mesh);
        const int Silent = 6;
        var sockets = new List<Socket>();
        try
        {
            for (int i = 0; i < Silent; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                sockets.Add(s);
                await s.ConnectAsync(TestAddresses.Loopback(BadInputAssertions.Hbone(mesh))).WaitAsync(RawHttp2Client.Timeout);
            }
            // Nothing sent: each is dropped by the agent's 10 s handshake deadline (40 s is our backstop).
            await Task.WhenAll(sockets.Select(ReadUntilClosedAsync)).WaitAsync(TimeSpan.FromSeconds(40));
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }

        // The metric is exact.
        await TwoNodeMesh.EventuallyAsync(async () => await BadInputAssertions.RefusedAsync(mesh) == before + Silent, "every refusal counted");

        // The log: a line in full for the first of an interval, the rest in the interval's summary (10 s).
        int full = 0, summarised = 0;
        await TwoNodeMesh.EventuallyAsync(() =>
        {
            var lines = logs.Lines.Where(l => l.Contains(Reason, StringComparison.Ordinal)).ToList();
            full = lines.Count(l => !l.Contains("more hbone connections refused", StringComparison.Ordinal));
            summarised = lines.Select(l => Summary().Match(l)).Where(m => m.Success).Sum(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            return full + summarised == Silent;
        }, "every refusal logged in full or in a summary", 30_000);
        Assert.True(full <= 2, $"{full} lines for {Silent} refused connections:\n{logs}");
        Assert.DoesNotContain(logs.Lines, l => l.Contains("The operation was canceled", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"(\d+) more hbone connections refused \(tls_handshake\)")]
    private static partial Regex Summary();

    private static async Task ReadUntilClosedAsync(Socket s)
    {
        var buf = new byte[256];
        try
        {
            while (await s.ReceiveAsync(buf.AsMemory(), SocketFlags.None) > 0)
            {
            }
        }
        catch (SocketException)
        {
        }
    }
}
