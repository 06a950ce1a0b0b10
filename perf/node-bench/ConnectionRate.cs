using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Ambient.NodeBench;

/// <summary>
/// New connections per second, closed loop on purpose: each worker connects, makes one small request with
/// "Connection: close", reads the whole answer and starts over. A connection counts only once the answer came
/// back, because with transparent capture connect() succeeds at the local agent before any tunnel exists.
/// </summary>
internal static class ConnectionRate
{
    public static async Task<int> RunAsync(Args args)
    {
        IPEndPoint target = args.Endpoint("target");
        double seconds = args.Double("seconds", 5);
        int workers = args.Int("workers", 8);
        byte[] request = Http1.Message("GET / HTTP/1.1", 0, close: true);
        long ok = 0, failed = 0;
        var sw = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var tasks = new Task[workers];
        for (int w = 0; w < workers; w++)
        {
            tasks[w] = Task.Run(async () =>
            {
                while (!cts.IsCancellationRequested)
                {
                    if (await OneAsync(target, request))
                    {
                        Interlocked.Increment(ref ok);
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
            });
        }
        await Task.WhenAll(tasks);
        double elapsed = sw.Elapsed.TotalSeconds;
        var result = new Dictionary<string, object>
        {
            ["connections"] = ok,
            ["failed"] = failed,
            ["seconds"] = elapsed,
            ["connections_per_second"] = ok / elapsed,
        };
        await File.WriteAllTextAsync(args.Str("out"), JsonSerializer.Serialize(result));
        Console.WriteLine($"connrate: {ok / elapsed:F0} conn/s ({ok} ok, {failed} failed in {elapsed:F1} s)");
        return ok == 0 ? 1 : 0;
    }

    private static async Task<bool> OneAsync(IPEndPoint target, byte[] request)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(target, cts.Token);
            await Http1.SendAllAsync(socket, request, cts.Token);
            var reader = new Http1Reader(socket);
            var (ok, _) = await reader.ReadMessageAsync(cts.Token);
            return ok;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException)
        {
            return false;
        }
    }
}
