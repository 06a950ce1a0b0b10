using System.Diagnostics;
using System.Threading.Channels;
using OpenTelemetry;

namespace Ambient.Waypoint.Telemetry.Tracing;

/// <summary>
/// Hands finished spans to the OTLP exporter from one background loop, so a request never waits for the collector:
/// a bounded queue (<c>OTEL_BSP_MAX_QUEUE_SIZE</c>) that drops the newest span when full, batches of at most
/// <c>OTEL_BSP_MAX_EXPORT_BATCH_SIZE</c> sent when full or after <c>OTEL_BSP_SCHEDULE_DELAY</c>. Spans lost to a full
/// queue or a failed export are counted (<see cref="Dropped"/>, rendered in the waypoint's one metrics registry).
/// It derives from the SDK's export processor (rather than using its batch processor) because that one keeps its drop
/// count to itself, and so the exporter still learns the provider's resource (service.name) from the SDK.
/// </summary>
internal sealed class SpanExportQueue : BaseExportProcessor<Activity>
{
    private readonly ActivitySource _owner;
    private readonly Channel<Activity> _queue;
    private readonly int _batchSize;
    private readonly TimeSpan _delay;
    private readonly Task _loop;
    private readonly CancellationTokenSource _stop = new();
    private long _queueFull;
    private long _exportFailed;
    private long _exported;

    /// <param name="owner">The waypoint's source: the SDK's listener hands over every span of the source name in the
    /// process, and only this waypoint's own are exported here.</param>
    public SpanExportQueue(BaseExporter<Activity> exporter, TracingOptions options, ActivitySource owner)
        : base(exporter)
    {
        _owner = owner;
        _queue = Channel.CreateBounded<Activity>(new BoundedChannelOptions(options.MaxQueueSize)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails at once instead of waiting: the span is dropped
        });
        _batchSize = options.MaxExportBatchSize;
        _delay = options.ScheduleDelay;
        _loop = Task.Factory.StartNew(ExportLoopAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>Spans lost: the queue was full, or the collector refused or could not be reached.</summary>
    public (long QueueFull, long ExportFailed) Dropped => (Interlocked.Read(ref _queueFull), Interlocked.Read(ref _exportFailed));

    public long Exported => Interlocked.Read(ref _exported);

    protected override void OnExport(Activity data)
    {
        if (!data.Recorded || data.Source != _owner || !WaypointTracing.Reported(data))
        {
            return;
        }
        if (!_queue.Writer.TryWrite(data))
        {
            Interlocked.Increment(ref _queueFull);
        }
    }

    private async Task ExportLoopAsync()
    {
        var batch = new Activity[_batchSize];
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                int n = 0;
                using (var wait = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
                {
                    wait.CancelAfter(_delay);
                    try
                    {
                        while (n < batch.Length)
                        {
                            while (n < batch.Length && reader.TryRead(out var span))
                            {
                                batch[n++] = span;
                            }
                            if (n == batch.Length || !await reader.WaitToReadAsync(wait.Token).ConfigureAwait(false))
                            {
                                break;
                            }
                        }
                    }
                    catch (OperationCanceledException)
                    {
                        // The delay is up (or shutdown): send what there is.
                    }
                }
                Send(batch, n);
            }
        }
        catch (ChannelClosedException)
        {
        }
    }

    private void Send(Activity[] batch, int n)
    {
        if (n == 0)
        {
            return;
        }
        ExportResult result;
        try
        {
            result = exporter.Export(new Batch<Activity>(batch, n));
        }
#pragma warning disable CA1031 // an exporter failure must never end the loop; the spans are counted as lost
        catch (Exception)
#pragma warning restore CA1031
        {
            result = ExportResult.Failure;
        }
        Interlocked.Add(ref result == ExportResult.Success ? ref _exported : ref _exportFailed, n);
        Array.Clear(batch, 0, n);
    }

    protected override bool OnForceFlush(int timeoutMilliseconds)
    {
        // Wait for what is queued now to be sent (or counted lost); the exporter itself keeps nothing.
        var deadline = Stopwatch.GetTimestamp() + (timeoutMilliseconds < 0 ? long.MaxValue / 2 : timeoutMilliseconds * Stopwatch.Frequency / 1000);
        while (_queue.Reader.Count > 0 && Stopwatch.GetTimestamp() < deadline)
        {
            Thread.Sleep(10);
        }
        return _queue.Reader.Count == 0 && base.OnForceFlush(timeoutMilliseconds);
    }

    protected override bool OnShutdown(int timeoutMilliseconds)
    {
        _queue.Writer.TryComplete();
        _stop.Cancel();
        bool done = _loop.Wait(timeoutMilliseconds < 0 ? Timeout.Infinite : timeoutMilliseconds);
        return done && base.OnShutdown(timeoutMilliseconds);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stop.Dispose();
        }
        base.Dispose(disposing);
    }
}
