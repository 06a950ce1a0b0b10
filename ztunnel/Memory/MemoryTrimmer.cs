using System.Runtime;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Memory;

/// <summary>
/// Gives memory back once a burst of connections is over (issue 13, finding 5). .NET collects only when something
/// allocates: after 10,000 tunnels close, an agent that then sits quiet runs no GC at all, and the garbage of those
/// tunnels (promoted to gen2 while they lived), the heap regions holding it and the native buffers freed with them stay
/// in the process's RSS indefinitely (perf/README.md has the numbers). So when the agent has been quiet for a whole
/// <see cref="Interval"/> (not one GC ran), and either the GC heap has grown well past what it was after the last trim
/// or the agent now holds far fewer connections than it did (the HBONE pool closing its idle connections minutes after
/// the tunnels ended frees memory no GC will ever notice in a quiet process), it runs one full, compacting, aggressive
/// collection (<see cref="GCCollectionMode.Aggressive"/> decommits what the heap no longer needs) and then asks glibc to
/// return its free pages (<c>malloc_trim</c>). A busy agent is never interrupted (its GCs run anyway); an idle one is
/// trimmed once per burst.
/// </summary>
internal sealed partial class MemoryTrimmer : IDisposable
{
    /// <summary>Quiet this long (no GC of any generation) before a trim: a few seconds of lull are not the end of a burst.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);

    // Growth that is worth a blocking collection: half again the size after the last trim, and at least 16 MB.
    private const double GrowthFactor = 1.5;
    private const long MinGrowthBytes = 16L << 20;

    // A drop in connections that is worth one: to half the most seen since the last trim, and at least 64 fewer
    // (a pooled HBONE connection with its TLS and HTTP/2 state is some 35 KB; 64 of them a couple of MB).
    private const int MinConnectionDrop = 64;

    private readonly Func<int> _connections;
    private readonly ILogger _logger;
    private readonly ITimer _timer;
    private readonly Lock _lock = new();
    private int _lastCollections = -1;
    private long _baselineBytes;
    private int _peakConnections;

    /// <param name="connections">Connections the agent holds now (proxied, being set up, HBONE pooled and served).</param>
    public MemoryTrimmer(Func<int> connections, ILogger logger, TimeProvider? time = null)
    {
        _connections = connections;
        _logger = logger;
        _baselineBytes = GC.GetGCMemoryInfo().TotalCommittedBytes;
        _timer = (time ?? TimeProvider.System).CreateTimer(static s => ((MemoryTrimmer)s!).Check(), this, Interval, Interval);
    }

    /// <summary>Trims done so far (for tests and /config_dump).</summary>
    public int Trims { get; private set; }

    internal void Check()
    {
        lock (_lock)
        {
            int open = _connections();
            _peakConnections = Math.Max(_peakConnections, open);
            int collections = GC.CollectionCount(0); // counts every GC: a gen1 or gen2 collection collects gen0 too
            bool quiet = collections == _lastCollections;
            _lastCollections = collections;
            if (!quiet)
            {
                return;
            }
            long committed = GC.GetGCMemoryInfo().TotalCommittedBytes; // as the last GC left it
            bool grew = committed >= _baselineBytes * GrowthFactor && committed - _baselineBytes >= MinGrowthBytes;
            bool fewer = _peakConnections - open >= MinConnectionDrop && open <= _peakConnections / 2;
            if (grew || fewer)
            {
                Trim(committed, open);
            }
        }
    }

    private void Trim(long committedBefore, int open)
    {
        long rssBefore = Environment.WorkingSet;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        // The shared buffer pools (ArrayPool, the pipes' memory pool) let go of idle buffers in a callback that runs
        // on the finalizer thread after a gen2 GC; only a second collection frees what they dropped.
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        long rssAfterGc = Environment.WorkingSet;
        if (OperatingSystem.IsLinux())
        {
            try
            {
                _ = malloc_trim(0);
            }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
            {
                // Not glibc (musl): its allocator returns memory on its own.
            }
        }
        long rssAfter = Environment.WorkingSet;
        var info = GC.GetGCMemoryInfo();
        _baselineBytes = info.TotalCommittedBytes;
        _lastCollections = GC.CollectionCount(0);
        Log.Trimmed(_logger, _peakConnections, open, Mb(rssBefore), Mb(rssAfterGc), Mb(rssAfter), Mb(committedBefore), Mb(info.TotalCommittedBytes), Mb(info.HeapSizeBytes));
        _peakConnections = open;
        Trims++;
    }

    private static double Mb(long bytes) => Math.Round(bytes / 1048576.0, 1);

    public void Dispose() => _timer.Dispose();

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int malloc_trim(nuint pad);

    private static partial class Log
    {
        [LoggerMessage(EventId = 5200, Level = LogLevel.Information,
            Message = "quiet after a burst ({Peak} -> {Open} connections): memory trimmed, RSS {RssBefore} MB -> {RssAfterGc} MB after a full GC -> {RssAfter} MB after malloc_trim (GC heap committed {CommittedBefore} -> {CommittedAfter} MB, {Live} MB live)")]
        public static partial void Trimmed(ILogger logger, int peak, int open, double rssBefore, double rssAfterGc, double rssAfter, double committedBefore, double committedAfter, double live);
    }
}
