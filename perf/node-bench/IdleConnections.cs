using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Ambient.NodeBench;

/// <summary>
/// Opens N connections, proves each one reaches the server (one request and answer, so the tunnel really
/// exists end to end), then holds them idle until killed. The driver reads the agents' memory meanwhile.
/// </summary>
internal static class IdleConnections
{
    public static async Task<int> RunAsync(Args args)
    {
        IPEndPoint target = args.Endpoint("target");
        int count = args.Int("count", 10_000);
        int parallel = args.Int("parallel", 64);
        byte[] request = Http1.Message("GET / HTTP/1.1", 0, close: false);
        var sockets = new Socket?[count];
        int next = -1, failed = 0;
        var openers = new Task[parallel];
        for (int p = 0; p < parallel; p++)
        {
            openers[p] = Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < count)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    try
                    {
                        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                        await s.ConnectAsync(target, cts.Token);
                        await Http1.SendAllAsync(s, request, cts.Token);
                        var (ok, _) = await new Http1Reader(s).ReadMessageAsync(cts.Token);
                        if (!ok)
                        {
                            throw new IOException("closed before the answer");
                        }
                        sockets[i] = s;
                    }
                    catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException)
                    {
                        Interlocked.Increment(ref failed);
                        s.Dispose();
                    }
                }
            });
        }
        await Task.WhenAll(openers);
        int open = count - failed;
        await File.WriteAllTextAsync(args.Str("ready"), JsonSerializer.Serialize(new Dictionary<string, int>
        {
            ["open"] = open,
            ["failed"] = failed,
        }));
        Console.WriteLine($"idle: holding {open} connections ({failed} failed)");
        await Task.Delay(Timeout.Infinite);
        GC.KeepAlive(sockets);
        return 0;
    }
}
