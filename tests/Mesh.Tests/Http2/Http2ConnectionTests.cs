using System.IO.Pipelines;
using Ambient.Mesh.Http2;

namespace Ambient.Mesh.Tests.Http2;

/// <summary>Our client against our server over loopback TCP (h2c).</summary>
public sealed class Http2ConnectionTests
{
    private static readonly TimeSpan s_timeout = Http2TestUtil.Timeout;

    private static async Task<Http2Stream> OpenAsync(Http2Connection client, string authority = "10.0.0.1:8080")
    {
        Http2Stream stream = await client.OpenStreamAsync(Http2TestUtil.Connect(authority), CancellationToken.None).AsTask().WaitAsync(s_timeout);
        return stream;
    }

    [Fact]
    public async Task SingleStreamEchoes()
    {
        var (client, server) = await Http2TestUtil.CreatePairAsync(Http2TestUtil.EchoHandler);
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            Http2Response response = await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            Assert.Equal(200, response.Status);
            byte[] payload = new byte[100_000];
            Random.Shared.NextBytes(payload);
            Task<byte[]> read = Http2TestUtil.ReadAllAsync(stream.Input);
            await Http2TestUtil.WriteChunkedAsync(stream, payload, 8192);
            await stream.CompleteWritesAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            Assert.Equal(payload, await read.WaitAsync(s_timeout));
            await stream.Completion.WaitAsync(s_timeout);
            Assert.Equal(0, client.ActiveStreams);
            Assert.Equal(1, client.TotalStreams);
        }
    }

    [Fact]
    public async Task FiftyConcurrentStreamsEchoOneMebibyteEach()
    {
        var seen = new System.Collections.Concurrent.ConcurrentBag<string>();
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            seen.Add(s.RequestHeaders.First(h => h.Name == ":authority").Value);
            await Http2TestUtil.EchoHandler(s);
        });
        await using (client)
        await using (server)
        {
            var tasks = new List<Task>();
            for (int i = 0; i < 50; i++)
            {
                int n = i;
                tasks.Add(Task.Run(async () =>
                {
                    var payload = new byte[1024 * 1024];
                    new Random(n).NextBytes(payload);
                    Http2Stream stream = await OpenAsync(client, $"10.0.{n}.1:80");
                    Task<byte[]> read = Http2TestUtil.ReadAllAsync(stream.Input);
                    await Http2TestUtil.WriteChunkedAsync(stream, payload, 16384 + n);
                    await stream.CompleteWritesAsync(CancellationToken.None);
                    Assert.Equal(200, (await stream.ReadResponseHeadersAsync(CancellationToken.None)).Status);
                    byte[] echoed = await read;
                    Assert.True(payload.AsSpan().SequenceEqual(echoed), $"stream {stream.Id} corrupted");
                    await stream.Completion.WaitAsync(s_timeout);
                }));
            }

            await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(50, seen.Count);
            Assert.Equal(0, client.ActiveStreams);
            await WaitUntilAsync(() => server.ActiveStreams == 0);
        }
    }

    [Fact]
    public async Task ClientHalfCloseLetsServerKeepSending()
    {
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
            byte[] request = await Http2TestUtil.ReadAllAsync(s.Input); // ends when the client half-closes
            for (int i = 0; i < 10; i++)
            {
                await s.WriteAsync(request, CancellationToken.None);
            }

            await s.CompleteWritesAsync(CancellationToken.None);
        });
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            await stream.WriteAsync("hello"u8.ToArray(), CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await stream.CompleteWritesAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await stream.CompleteWritesAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout); // idempotent
            byte[] response = await Http2TestUtil.ReadAllAsync(stream.Input);
            Assert.Equal(string.Concat(Enumerable.Repeat("hello", 10)), System.Text.Encoding.ASCII.GetString(response));
            await stream.Completion.WaitAsync(s_timeout);
        }
    }

    [Fact]
    public async Task ServerHalfCloseLetsClientKeepSending()
    {
        var received = new TaskCompletionSource<byte[]>();
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
            await s.WriteAsync("bye"u8.ToArray(), CancellationToken.None);
            await s.CompleteWritesAsync(CancellationToken.None);
            received.SetResult(await Http2TestUtil.ReadAllAsync(s.Input));
        });
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            Assert.Equal("bye", System.Text.Encoding.ASCII.GetString(await Http2TestUtil.ReadAllAsync(stream.Input)));
            var data = new byte[300_000];
            Random.Shared.NextBytes(data);
            await Http2TestUtil.WriteChunkedAsync(stream, data, 65536);
            await stream.CompleteWritesAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            Assert.Equal(data, await received.Task.WaitAsync(s_timeout));
            await stream.Completion.WaitAsync(s_timeout);
        }
    }

    [Fact]
    public async Task ClientResetReachesServer()
    {
        var serverError = new TaskCompletionSource<Exception>();
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
            try
            {
                await Http2TestUtil.ReadAllAsync(s.Input);
                serverError.SetResult(new InvalidOperationException("no error"));
            }
            catch (Exception ex)
            {
                serverError.SetResult(ex);
            }
        });
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            stream.Reset(Http2ErrorCode.Cancel);
            stream.Reset(Http2ErrorCode.Cancel); // idempotent
            var ex = Assert.IsType<Http2StreamException>(await serverError.Task.WaitAsync(s_timeout));
            Assert.True(ex.RemoteReset);
            Assert.Equal(Http2ErrorCode.Cancel, ex.Code);
            await stream.Completion.WaitAsync(s_timeout);
            await Assert.ThrowsAsync<Http2StreamException>(() => stream.WriteAsync(new byte[1], CancellationToken.None).AsTask());
            Assert.Equal(0, client.ActiveStreams);
        }
    }

    [Fact]
    public async Task ServerResetReachesClient()
    {
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
            await s.WriteAsync(new byte[10], CancellationToken.None);
            s.Reset(Http2ErrorCode.ConnectError);
        });
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            var ex = await Assert.ThrowsAsync<Http2StreamException>(() => Http2TestUtil.ReadAllAsync(stream.Input));
            Assert.True(ex.RemoteReset);
            Assert.Equal(Http2ErrorCode.ConnectError, ex.Code);
            await stream.Completion.WaitAsync(s_timeout);
            // The connection itself is unaffected.
            Assert.True(client.CanOpenStream);
        }
    }

    [Fact]
    public async Task ServerStatusWithEndStreamCompletesClient()
    {
        var (client, server) = await Http2TestUtil.CreatePairAsync(s =>
            s.SendResponseHeadersAsync(503, [new("x-reason", "upstream")], endStream: true, CancellationToken.None).AsTask());
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            Http2Response response = await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            Assert.Equal(503, response.Status);
            Assert.Equal([new HeaderField("x-reason", "upstream")], response.Headers);
            Assert.Empty(await Http2TestUtil.ReadAllAsync(stream.Input));
        }
    }

    [Fact]
    public async Task GracefulShutdownLetsOpenStreamsFinish()
    {
        var release = new TaskCompletionSource();
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
            await release.Task;
            await Http2TestUtil.EchoHandler2(s);
        });
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await server.ShutdownAsync().AsTask().WaitAsync(s_timeout);
            Assert.True(server.IsClosing);

            // The client learns about the GOAWAY and stops opening streams on this connection.
            await WaitUntilAsync(() => !client.CanOpenStream);
            Assert.True(client.IsClosing);
            var refused = await Assert.ThrowsAsync<Http2StreamException>(() => client.OpenStreamAsync(Http2TestUtil.Connect("a:1"), CancellationToken.None).AsTask());
            Assert.Equal(Http2ErrorCode.RefusedStream, refused.Code);

            // The stream that was already open still works end to end.
            release.SetResult();
            Task<byte[]> read = Http2TestUtil.ReadAllAsync(stream.Input);
            await stream.WriteAsync("still here"u8.ToArray(), CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await stream.CompleteWritesAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            Assert.Equal("still here", System.Text.Encoding.ASCII.GetString(await read.WaitAsync(s_timeout)));

            // Then both sides close.
            await server.Completion.WaitAsync(s_timeout);
            await client.Completion.WaitAsync(s_timeout);
        }
    }

    [Fact]
    public async Task SlowReaderBlocksWriterWithinTheWindow()
    {
        var options = new Http2Options { InitialStreamWindowSize = 256 * 1024, InitialConnectionWindowSize = 1024 * 1024 };
        var startReading = new TaskCompletionSource();
        var total = new TaskCompletionSource<long>();
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
            await startReading.Task;
            total.SetResult((await Http2TestUtil.ReadAllAsync(s.Input)).LongLength);
        }, serverOptions: options);
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            var data = new byte[4 * 1024 * 1024];
            Task write = stream.WriteAsync(data, CancellationToken.None).AsTask();

            // The server does not read: the writer must park once the 256 KiB stream window is used up.
            await Task.Delay(300);
            Assert.False(write.IsCompleted);
            Http2Stream serverStream = Assert.Single(ServerStreams(server));
            Assert.True(serverStream.Buffered <= options.InitialStreamWindowSize, $"buffered {serverStream.Buffered}");

            startReading.SetResult();
            await write.WaitAsync(s_timeout);
            await stream.CompleteWritesAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            Assert.Equal(data.Length, await total.Task.WaitAsync(s_timeout));
        }
    }

    [Fact]
    public async Task StreamLimitRefusesExtraStreams()
    {
        var hold = new TaskCompletionSource();
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
            await hold.Task;
            await Http2TestUtil.EchoHandler2(s);
        }, serverOptions: new Http2Options { MaxConcurrentStreams = 2 });
        await using (client)
        await using (server)
        {
            Http2Stream a = await OpenAsync(client);
            await a.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout); // SETTINGS arrived by now
            Assert.Equal(2, client.PeerMaxConcurrentStreams);
            Http2Stream b = await OpenAsync(client);
            Assert.False(client.CanOpenStream);
            var ex = await Assert.ThrowsAsync<Http2StreamException>(() => client.OpenStreamAsync(Http2TestUtil.Connect("a:1"), CancellationToken.None).AsTask());
            Assert.Equal(Http2ErrorCode.RefusedStream, ex.Code);

            hold.SetResult();
            await a.CompleteWritesAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            await Http2TestUtil.ReadAllAsync(a.Input);
            await a.Completion.WaitAsync(s_timeout);
            Assert.True(client.CanOpenStream);
            b.Reset(Http2ErrorCode.Cancel);
        }
    }

    [Fact]
    public async Task AbortFailsOpenStreams()
    {
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, false, CancellationToken.None);
            await Http2TestUtil.ReadAllAsync(s.Input);
        });
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            Task<byte[]> read = Http2TestUtil.ReadAllAsync(stream.Input);
            client.Abort();
            var ex = await Assert.ThrowsAsync<Http2StreamException>(() => read);
            Assert.False(ex.RemoteReset);
            await client.Completion.WaitAsync(s_timeout);
            await server.Completion.WaitAsync(s_timeout);
            Assert.False(client.CanOpenStream);
        }
    }

    [Fact]
    public async Task ManySequentialStreamsReuseTheHpackTable()
    {
        var (client, server) = await Http2TestUtil.CreatePairAsync(s =>
            s.SendResponseHeadersAsync(200, [new("server", "ambient")], endStream: true, CancellationToken.None).AsTask());
        await using (client)
        await using (server)
        {
            for (int i = 0; i < 300; i++)
            {
                Http2Stream stream = await client.OpenStreamAsync(
                    [new(":method", "CONNECT"), new(":authority", "10.1.2.3:443"), new("baggage", "k8s.namespace.name=default"), new("traceparent", $"00-{i:x32}-{i:x16}-01")],
                    CancellationToken.None).AsTask().WaitAsync(s_timeout);
                Http2Response response = await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
                Assert.Equal("ambient", response.Headers[0].Value);
                await stream.CompleteWritesAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
                await stream.Completion.WaitAsync(s_timeout);
            }

            Assert.Equal(300, server.TotalStreams);
            // The last END_STREAM may still be in flight to the server.
            await WaitUntilAsync(() => server.ActiveStreams == 0);
        }
    }

    private static Http2Stream[] ServerStreams(Http2Connection server) => server.SnapshotStreams();

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + s_timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10);
        }
    }
}
