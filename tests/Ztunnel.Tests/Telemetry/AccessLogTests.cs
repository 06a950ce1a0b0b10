using System.Collections.Immutable;
using System.Net;
using System.Text.Json;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Telemetry;

namespace Ambient.Ztunnel.Tests.Telemetry;

/// <summary>
/// The access log: one line per connection in Istio ztunnel's shape (text) or one JSON object per line, written whole
/// even when connections end at the same time, and one line whatever a value holds.
/// </summary>
public sealed class AccessLogTests
{
    private static readonly Workload Server = new()
    {
        Uid = "uid/server",
        Name = "server-0",
        Namespace = "shop",
        WorkloadIps = [IPAddress.Parse("127.50.0.2")],
    };

    private static ConnectionRecord Record(string? error = null, string flags = "-") => new("inbound", new IPEndPoint(IPAddress.Parse("127.50.0.1"), 40000))
    {
        SourceIdentity = "spiffe://cluster.local/ns/shop/sa/client",
        Destination = new IPEndPoint(IPAddress.Parse("127.50.0.2"), 8080),
        HboneAddress = new IPEndPoint(IPAddress.Parse("127.50.0.2"), 15008),
        DestinationWorkload = Server,
        DestinationService = new Service { Name = "web", Namespace = "shop", Hostname = "web.shop.svc.cluster.local", Ports = ImmutableDictionary<int, int>.Empty },
        DestinationIdentity = "spiffe://cluster.local/ns/shop/sa/server",
        ResponseFlags = flags,
        Error = error,
        BytesSent = 12,
        BytesReceived = 34,
    };

    private static string WriteOne(AccessLogFormat format, ConnectionRecord r)
    {
        using var w = new StringWriter();
        new AccessLog(w, format).Write(r);
        return w.ToString();
    }

    [Fact]
    public void Text_IsOneLineInIstiosShape()
    {
        string line = WriteOne(AccessLogFormat.Text, Record());
        Assert.EndsWith("\n", line, StringComparison.Ordinal);
        Assert.Single(line.TrimEnd('\n').Split('\n'));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\tinfo\taccess\tconnection complete ", line);
        Assert.Contains(
            " src.addr=127.50.0.1:40000 src.identity=\"spiffe://cluster.local/ns/shop/sa/client\" dst.addr=127.50.0.2:8080"
            + " dst.hbone_addr=127.50.0.2:15008 dst.service=\"web.shop.svc.cluster.local\" dst.workload=\"server-0\" dst.namespace=\"shop\""
            + " dst.identity=\"spiffe://cluster.local/ns/shop/sa/server\" direction=\"inbound\" bytes_sent=12 bytes_recv=34 duration=\"",
            line, StringComparison.Ordinal);
        // Unset fields are left out; "-" flags too.
        Assert.DoesNotContain("src.workload=", line, StringComparison.Ordinal);
        Assert.DoesNotContain("response_flags", line, StringComparison.Ordinal);
        Assert.DoesNotContain("error=", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Text_RefusalsCarryLevelFlagsAndAnEscapedError()
    {
        string line = WriteOne(AccessLogFormat.Text, Record("denied: \"x\"\nsecond line \\ end", "DENY"));
        Assert.Single(line.TrimEnd('\n').Split('\n'));
        Assert.Contains("\terror\taccess\tconnection complete", line, StringComparison.Ordinal);
        Assert.Contains(" response_flags=\"DENY\"", line, StringComparison.Ordinal);
        Assert.EndsWith(" error=\"denied: \\\"x\\\"\\nsecond line \\\\ end\"\n", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Text_BracketsIpv6()
    {
        var r = new ConnectionRecord("outbound", new IPEndPoint(IPAddress.IPv6Loopback, 5000)) { Destination = new IPEndPoint(IPAddress.Parse("fd00::2"), 80) };
        string line = WriteOne(AccessLogFormat.Text, r);
        Assert.Contains(" src.addr=[::1]:5000 dst.addr=[fd00::2]:80 ", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_IsOneObjectPerLine_WithTheSameFields()
    {
        string line = WriteOne(AccessLogFormat.Json, Record("boom", "DENY"));
        Assert.Single(line.TrimEnd('\n').Split('\n'));
        using var doc = JsonDocument.Parse(line);
        var o = doc.RootElement;
        Assert.Equal("error", o.GetProperty("level").GetString());
        Assert.Equal("access", o.GetProperty("scope").GetString());
        Assert.Equal("127.50.0.1:40000", o.GetProperty("src.addr").GetString());
        Assert.Equal("127.50.0.2:15008", o.GetProperty("dst.hbone_addr").GetString());
        Assert.Equal("server-0", o.GetProperty("dst.workload").GetString());
        Assert.Equal("inbound", o.GetProperty("direction").GetString());
        Assert.Equal(12, o.GetProperty("bytes_sent").GetInt64());
        Assert.Equal(34, o.GetProperty("bytes_recv").GetInt64());
        Assert.Equal("DENY", o.GetProperty("response_flags").GetString());
        Assert.Equal("boom", o.GetProperty("error").GetString());
        Assert.False(o.TryGetProperty("src.workload", out _));
    }

    [Fact]
    public void Off_WritesNothing()
    {
        Assert.Equal("", WriteOne(AccessLogFormat.Off, Record()));
    }

    [Fact]
    public async Task ConcurrentConnections_NeverInterleaveTheirLines()
    {
        using var w = new StringWriter();
        var log = new AccessLog(w, AccessLogFormat.Json);
        const int Writers = 8, Each = 200;
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(i => Task.Run(() =>
        {
            for (int j = 0; j < Each; j++)
            {
                log.Write(Record(error: $"writer {i} line {j}"));
            }
        }))).WaitAsync(TimeSpan.FromSeconds(30));
        var lines = w.ToString().TrimEnd('\n').Split('\n');
        Assert.Equal(Writers * Each, lines.Length);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var l in lines)
        {
            using var doc = JsonDocument.Parse(l);
            Assert.True(seen.Add(doc.RootElement.GetProperty("error").GetString()!));
        }
    }
}
