using System.Diagnostics;
using System.Net;
using Ambient.Mesh.Model;

namespace Ambient.Ztunnel.Telemetry;

/// <summary>
/// Everything the access log and the metrics say about one proxied connection. Filled in as the proxy learns
/// (source, destination, peer identity), then <see cref="Open"/>ed once its labels are final, and
/// <see cref="Close"/>d exactly once.
/// </summary>
internal sealed class ConnectionRecord(string direction, IPEndPoint source)
{
    private readonly long _start = Stopwatch.GetTimestamp();
    private TcpCounters? _counters;
    private int _closed;

    public string Direction { get; } = direction;
    public IPEndPoint Source { get; } = source;
    public Workload? SourceWorkload { get; set; }
    public string? SourceIdentity { get; set; }
    public IPEndPoint? Destination { get; set; }
    public IPEndPoint? HboneAddress { get; set; }
    public Service? DestinationService { get; set; }
    public Workload? DestinationWorkload { get; set; }
    public string? DestinationIdentity { get; set; }
    public bool MutualTls { get; set; }
    public string ResponseFlags { get; set; } = "-";
    public string? Error { get; set; }
    public long BytesSent;
    public long BytesReceived;

    public TimeSpan Duration => Stopwatch.GetElapsedTime(_start);

    /// <summary>Counts the connection as opened under its final labels.</summary>
    public void Open(MeshMetrics metrics)
    {
        if (_counters is not null)
        {
            return;
        }
        _counters = metrics.For(new TcpLabels.Key(
            Direction == "inbound" ? "destination" : "source",
            SourceWorkload,
            SourceIdentity,
            DestinationWorkload,
            DestinationIdentity,
            DestinationService,
            ResponseFlags,
            MutualTls));
        metrics.ConnectionOpened(_counters);
    }

    /// <summary>Bytes from the client towards the destination ("received during request").</summary>
    public void AddReceived(int n)
    {
        BytesReceived += n;
        if (_counters is { } c)
        {
            Interlocked.Add(ref c.ReceivedBytes, n);
        }
    }

    /// <summary>Bytes from the destination back to the client ("sent during response").</summary>
    public void AddSent(int n)
    {
        BytesSent += n;
        if (_counters is { } c)
        {
            Interlocked.Add(ref c.SentBytes, n);
        }
    }

    /// <summary>Closes the metrics and writes the access log line; later calls do nothing.</summary>
    public void Close(MeshMetrics metrics, AccessLog log, string? error = null)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }
        if (error is not null)
        {
            Error ??= error;
        }
        Open(metrics);
        metrics.ConnectionClosed(_counters!);
        log.Write(this);
    }
}
