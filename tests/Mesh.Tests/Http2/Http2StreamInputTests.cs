using System.Buffers;
using System.IO.Pipelines;
using Ambient.Mesh.Http2;

namespace Ambient.Mesh.Tests.Http2;

/// <summary>
/// A stream's received DATA as a <see cref="PipeReader"/> (Http2StreamInput, our own buffer): the parts of the
/// PipeReader contract that applications other than the tunnel relay rely on.
/// </summary>
public sealed class Http2StreamInputTests
{
    private static readonly TimeSpan s_timeout = Http2TestUtil.Timeout;

    /// <summary>A server that answers 200, sends <paramref name="payload"/> in 1,000-byte DATA frames and ends.</summary>
    private static Func<Http2Stream, Task> Sender(byte[] payload) => async s =>
    {
        await s.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None);
        await Http2TestUtil.WriteChunkedAsync(s, payload, 1000);
        await s.CompleteWritesAsync(CancellationToken.None);
    };

    private static async Task<Http2Stream> OpenAsync(Http2Connection client)
    {
        Http2Stream stream = await client.OpenStreamAsync(Http2TestUtil.Connect("10.0.0.1:8080"), CancellationToken.None).AsTask().WaitAsync(s_timeout);
        Assert.Equal(200, (await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout)).Status);
        return stream;
    }

    [Fact]
    public async Task PartialConsumptionKeepsOrderAndReturnsAllCredit()
    {
        // 3 MiB in small frames, consumed a little at a time: bytes must come out in order, across segment
        // boundaries, and the credit returned must let the whole transfer through a 1 MiB stream window.
        byte[] payload = new byte[3 * 1024 * 1024];
        Random.Shared.NextBytes(payload);
        var options = new Http2Options { InitialStreamWindowSize = 1024 * 1024 };
        var (client, server) = await Http2TestUtil.CreatePairAsync(Sender(payload), clientOptions: options);
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            var received = new MemoryStream();
            while (true)
            {
                ReadResult result = await stream.Input.ReadAsync().AsTask().WaitAsync(s_timeout);
                ReadOnlySequence<byte> buffer = result.Buffer;
                // Take about two thirds, leave the rest for the next read.
                long take = result.IsCompleted ? buffer.Length : Math.Max(1, buffer.Length * 2 / 3);
                foreach (ReadOnlyMemory<byte> m in buffer.Slice(0, take))
                {
                    received.Write(m.Span);
                }

                stream.Input.AdvanceTo(buffer.GetPosition(take));
                if (result.IsCompleted && take == buffer.Length)
                {
                    break;
                }
            }

            Assert.Equal(payload, received.ToArray());
        }
    }

    [Fact]
    public async Task ExaminedButNotConsumedWaitsForMoreData()
    {
        // ReadAtLeastAsync relies on it: after AdvanceTo(start, end) the next read must wait for new bytes instead
        // of returning the same buffer again (which would spin).
        byte[] payload = new byte[50_000];
        Random.Shared.NextBytes(payload);
        var (client, server) = await Http2TestUtil.CreatePairAsync(Sender(payload));
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            ReadResult result = await stream.Input.ReadAtLeastAsync(payload.Length).AsTask().WaitAsync(s_timeout);
            Assert.True(result.Buffer.Length >= payload.Length);
            Assert.Equal(payload, result.Buffer.Slice(0, payload.Length).ToArray());
            stream.Input.AdvanceTo(result.Buffer.End);
        }
    }

    [Fact]
    public async Task CancelPendingReadAndTokenEndAWaitingRead()
    {
        var hold = new TaskCompletionSource();
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None);
            await hold.Task;
        });
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);

            ValueTask<ReadResult> waiting = stream.Input.ReadAsync();
            Assert.False(waiting.IsCompleted);
            stream.Input.CancelPendingRead();
            ReadResult cancelled = await waiting.AsTask().WaitAsync(s_timeout);
            Assert.True(cancelled.IsCanceled);
            Assert.False(cancelled.IsCompleted);
            stream.Input.AdvanceTo(cancelled.Buffer.Start);

            using var cts = new CancellationTokenSource();
            ValueTask<ReadResult> second = stream.Input.ReadAsync(cts.Token);
            Assert.False(second.IsCompleted);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second.AsTask().WaitAsync(s_timeout));
            hold.SetResult();
        }
    }

    [Fact]
    public async Task PeerResetFailsAWaitingRead()
    {
        var (client, server) = await Http2TestUtil.CreatePairAsync(async s =>
        {
            await s.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None);
            await s.WriteAsync(new byte[] { 1, 2, 3 }, CancellationToken.None);
            await Task.Delay(100);
            s.Reset(Http2ErrorCode.Cancel);
        });
        await using (client)
        await using (server)
        {
            Http2Stream stream = await OpenAsync(client);
            var ex = await Assert.ThrowsAsync<Http2StreamException>(async () =>
            {
                while (true)
                {
                    ReadResult r = await stream.Input.ReadAsync().AsTask().WaitAsync(s_timeout);
                    stream.Input.AdvanceTo(r.Buffer.End);
                    Assert.False(r.IsCompleted, "a reset stream must not look like a clean end");
                }
            });
            Assert.True(ex.RemoteReset);
        }
    }
}
