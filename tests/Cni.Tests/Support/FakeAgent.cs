using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Ambient.Cni.Tests.Support;

/// <summary>
/// The agent side of PROTOCOL.md in the test process: accepts one request per connection, records it and
/// answers with whatever <see cref="Respond"/> returns (null = hang up without answering).
/// </summary>
internal sealed class FakeAgent : IAsyncDisposable
{
    private static readonly TimeSpan IoTimeout = TimeSpan.FromSeconds(30);
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;

    private FakeAgent(string socketPath)
    {
        SocketPath = socketPath;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(16);
        _acceptLoop = AcceptLoopAsync();
    }

    public string SocketPath { get; }

    public ConcurrentQueue<JsonObject> Requests { get; } = new();

    /// <summary>Maps a request to the raw response line (without the newline).</summary>
    public Func<JsonObject, string?> Respond { get; set; } = _ => """{"status":"captured"}""";

    /// <summary>Delay before answering, to exercise the plugin's timeout.</summary>
    public TimeSpan Delay { get; set; }

    public static FakeAgent Start(string socketPath) => new(socketPath);

    public static FakeAgent Answering(string socketPath, string status) =>
        new(socketPath) { Respond = _ => $$"""{"status":"{{status}}"}""" };

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var _ = client;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(IoTimeout);
        try
        {
            var received = new List<byte>();
            var buffer = new byte[4096];
            while (!received.Contains((byte)'\n'))
            {
                int n = await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                if (n == 0)
                {
                    return;
                }

                received.AddRange(buffer.AsSpan(0, n));
            }

            string line = Encoding.UTF8.GetString([.. received]).TrimEnd('\n');
            var request = (JsonObject)JsonNode.Parse(line)!;
            Requests.Enqueue(request);
            if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay, timeout.Token);
            }

            string? answer = Respond(request);
            if (answer is not null)
            {
                await client.SendAsync(Encoding.UTF8.GetBytes(answer + "\n"), SocketFlags.None, timeout.Token);
            }
        }
        catch (Exception) when (timeout.IsCancellationRequested)
        {
            // Shutting down or the plugin gave up first.
        }
        catch (SocketException)
        {
            // The plugin hung up (for example after its own timeout).
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        try
        {
            await _acceptLoop.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception)
        {
            // Best effort: the listener is closed either way.
        }

        File.Delete(SocketPath);
        _stop.Dispose();
    }
}
