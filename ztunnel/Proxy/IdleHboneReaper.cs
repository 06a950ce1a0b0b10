using System.Collections.Concurrent;
using Ambient.Mesh.Http2;
using Ambient.Ztunnel.Telemetry;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// Closes server-side HBONE connections that have carried no stream for <c>hboneIdleTimeout</c> (issue 13: any mesh
/// identity could otherwise hold thousands of empty mTLS connections, about 35 KB and one fd each, for ever). The
/// close is graceful: GOAWAY names the last stream processed, so a client that raced a new stream onto the connection
/// sees it refused and retries on a new connection. One timer scans every tracked connection; the timeout is read
/// from the live config on each scan, so a reload applies to connections already open.
/// </summary>
internal sealed class IdleHboneReaper : IDisposable
{
    private static readonly TimeSpan MaxScanInterval = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<Http2Connection, byte> _connections = new();
    private readonly Func<TimeSpan> _timeout;
    private readonly MeshMetrics _metrics;
    private readonly ITimer _timer;
    private int _disposed;

    public IdleHboneReaper(Func<TimeSpan> timeout, MeshMetrics metrics)
    {
        _timeout = timeout;
        _metrics = metrics;
        _timer = TimeProvider.System.CreateTimer(static s => ((IdleHboneReaper)s!).Scan(), this, ScanInterval(timeout()), Timeout.InfiniteTimeSpan);
    }

    /// <summary>Connections tracked now (for tests).</summary>
    public int Count => _connections.Count;

    /// <summary>Watches <paramref name="connection"/> until it completes.</summary>
    public void Track(Http2Connection connection)
    {
        _connections.TryAdd(connection, 0);
        connection.Completion.ContinueWith(
            static (completed, s) =>
            {
                var (reaper, c) = ((IdleHboneReaper, Http2Connection))s!;
                reaper._connections.TryRemove(c, out _);
            },
            (this, connection),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    // A connection is closed between timeout and timeout + interval after its last stream ended.
    private static TimeSpan ScanInterval(TimeSpan timeout) =>
        TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 4, TimeSpan.FromMilliseconds(100).Ticks, MaxScanInterval.Ticks));

    private void Scan()
    {
        TimeSpan timeout = _timeout();
        long now = Environment.TickCount64; // the clock of Http2Connection.LastActiveTicks
        long idleMs = (long)timeout.TotalMilliseconds;
        foreach (var c in _connections.Keys)
        {
            if (c.ActiveStreams == 0 && !c.IsClosing && now - c.LastActiveTicks >= idleMs)
            {
                _metrics.HboneIdleClosed();
                _ = c.ShutdownAsync().AsTask();
            }
        }
        if (Volatile.Read(ref _disposed) == 0)
        {
            try
            {
                _timer.Change(ScanInterval(timeout), Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // Disposed during the scan.
            }
        }
    }

    public void Dispose()
    {
        Volatile.Write(ref _disposed, 1);
        _timer.Dispose();
    }
}
