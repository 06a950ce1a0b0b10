using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Threading.Channels;
using HdrHistogram;

namespace Ambient.NodeBench;

/// <summary>
/// Constant-rate, open-loop HTTP/1.1 load. Request i is due at start + i/rate whatever happened to earlier
/// requests; its latency is measured from that due time, not from when it was actually sent, so a stalled
/// proxy is charged for every request it delayed (no coordinated omission). Requests are dealt round-robin
/// to a fixed set of keep-alive connections; a connection that falls behind queues its requests, and the
/// queueing shows up as latency, as it would for a real client.
/// </summary>
internal static partial class OpenLoopClient
{
    public static async Task<int> RunAsync(Args args)
    {
        IPEndPoint target = args.Endpoint("target");
        double rate = args.Double("rps", 1000);
        double seconds = args.Double("seconds", 10);
        double warmup = args.Double("warmup", 2);
        int connections = args.Int("connections", 16);
        byte[] request = Http1.Message("POST / HTTP/1.1", args.Int("size", 1024), close: false);

        var histogram = new LongHistogram(60_000_000_000L, 3); // nanoseconds, up to 60 s
        long errors = 0;
        long total = (long)((warmup + seconds) * rate);
        long recordFrom = (long)(warmup * rate);
        var queues = new Channel<long>[connections];
        var workers = new Task[connections];
        using var cts = new CancellationTokenSource();
        for (int c = 0; c < connections; c++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(target);
            queues[c] = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
            workers[c] = WorkAsync(socket, queues[c].Reader, request, histogram, () => Interlocked.Increment(ref errors), cts.Token);
        }

        // The schedule runs on its own thread with a 1 µs timer slack: the default 50 µs slack would add
        // jitter to every due time, and the schedule must not wait behind the thread pool's work.
        long startTicks = 0;
        var scheduler = new Thread(() =>
        {
            _ = Prctl(PrSetTimerslack, 1000, 0, 0, 0);
            startTicks = Stopwatch.GetTimestamp();
            double ticksPerRequest = Stopwatch.Frequency / rate;
            for (long i = 0; i < total; i++)
            {
                long due = startTicks + (long)(i * ticksPerRequest);
                // Thread.Sleep has millisecond resolution and Sleep(0) returns at once; usleep with a 1 µs slack
                // wakes within tens of microseconds. Loop because a wake-up may come early.
                long wait;
                while ((wait = due - Stopwatch.GetTimestamp()) > 0)
                {
                    _ = Usleep((uint)Math.Max(1, wait * 1_000_000 / Stopwatch.Frequency));
                }
                // The sequence number rides with the due time so the worker knows whether to record it.
                queues[i % connections].Writer.TryWrite(due << 1 | (i >= recordFrom ? 1L : 0L));
            }
            foreach (var q in queues)
            {
                q.Writer.Complete();
            }
        })
        { IsBackground = true, Priority = ThreadPriority.Highest, Name = "schedule" };
        scheduler.Start();
        var all = Task.WhenAll(workers);
        // A generous cap: a broken path must end the test, not hang the whole benchmark.
        if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(warmup + seconds + 30))) != all)
        {
            await cts.CancelAsync();
            Console.Error.WriteLine("load: the path stopped answering; results are partial");
        }
        double elapsed = (double)(Stopwatch.GetTimestamp() - startTicks) / Stopwatch.Frequency;

        long count = histogram.TotalCount;
        var points = new List<double[]>();
        foreach (var v in histogram.Percentiles(5))
        {
            points.Add([v.Percentile, v.ValueIteratedTo / 1e6]);
        }
        var result = new Dictionary<string, object>
        {
            ["requests"] = count,
            ["errors"] = errors,
            ["achieved_rps"] = count / Math.Max(0.001, elapsed - warmup),
            ["p50_ms"] = histogram.GetValueAtPercentile(50) / 1e6,
            ["p90_ms"] = histogram.GetValueAtPercentile(90) / 1e6,
            ["p99_ms"] = histogram.GetValueAtPercentile(99) / 1e6,
            ["p999_ms"] = histogram.GetValueAtPercentile(99.9) / 1e6,
            ["max_ms"] = histogram.GetMaxValue() / 1e6,
            ["percentiles"] = points,
        };
        await File.WriteAllTextAsync(args.Str("out"), JsonSerializer.Serialize(result));
        Console.WriteLine($"load: {count} requests, {errors} errors, p50 {result["p50_ms"]:F3} ms, p99 {result["p99_ms"]:F3} ms");
        return errors > 0 || count == 0 ? 1 : 0;
    }

    private static async Task WorkAsync(Socket socket, ChannelReader<long> queue, byte[] request,
        LongHistogram histogram, Action onError, CancellationToken ct)
    {
        using (socket)
        {
            var reader = new Http1Reader(socket);
            try
            {
                while (await queue.WaitToReadAsync(ct))
                {
                    while (queue.TryRead(out long item))
                    {
                        long due = item >> 1;
                        await Http1.SendAllAsync(socket, request, ct);
                        var (ok, _) = await reader.ReadMessageAsync(ct);
                        if (!ok)
                        {
                            onError();
                            return;
                        }
                        if ((item & 1) != 0)
                        {
                            long ns = (Stopwatch.GetTimestamp() - due) * 1_000_000_000L / Stopwatch.Frequency;
                            lock (histogram)
                            {
                                histogram.RecordValue(Math.Max(ns, 1));
                            }
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException)
            {
                onError();
            }
        }
    }

    private const int PrSetTimerslack = 29;

    [LibraryImport("libc", EntryPoint = "usleep")]
    private static partial int Usleep(uint microseconds);

    [LibraryImport("libc", EntryPoint = "prctl")]
    private static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
