using Ambient.Waypoint.Proxy;

namespace Ambient.Waypoint.Tests.Proxy;

/// <summary>The body kept for retries and mirrors: replayed to a new reader, never read ahead, dropped past its limit.</summary>
public sealed class ReplayableBodyTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static byte[] Bytes(int n, byte value) => Enumerable.Repeat(value, n).ToArray();

    [Fact]
    public async Task ANewReaderReplaysWhatWasReadThenReadsOnAndTheOldOneIsDetached()
    {
        var pipe = new System.IO.Pipelines.Pipe();
        using var body = new ReplayableBody(pipe.Reader.AsStream(), limit: 1000);
        var first = body.OpenReader();
        await pipe.Writer.WriteAsync(Bytes(300, 1));
        var buffer = new byte[1000];
        Assert.Equal(300, await first.ReadAsync(buffer).AsTask().WaitAsync(Timeout));

        // A retry: the second reader gets the 300 bytes again, then what the client sends next.
        var second = body.OpenReader();
        await Assert.ThrowsAsync<IOException>(() => first.ReadAsync(buffer).AsTask());
        Assert.Equal(300, await second.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
        Assert.All(buffer[..300], b => Assert.Equal(1, b));
        await pipe.Writer.WriteAsync(Bytes(200, 2));
        await pipe.Writer.CompleteAsync();
        Assert.Equal(200, await second.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
        Assert.Equal(0, await second.ReadAsync(buffer).AsTask().WaitAsync(Timeout));

        Assert.True(await body.Done.WaitAsync(Timeout));
        Assert.Equal(500, body.Kept.Length);
        Assert.Equal(2, body.Kept.Span[499]);
    }

    [Fact]
    public async Task NothingIsReadBeforeAReaderAsksAndABodyPastTheLimitCannotBeReplayed()
    {
        var pipe = new System.IO.Pipelines.Pipe();
        using var body = new ReplayableBody(pipe.Reader.AsStream(), limit: 100);
        await pipe.Writer.WriteAsync(Bytes(60, 1));
        Assert.Equal(0, body.Length); // nothing read ahead: a streaming call is never held back
        var reader = body.OpenReader();
        var buffer = new byte[1000];
        Assert.Equal(60, await reader.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
        Assert.True(body.CanReplay);
        await pipe.Writer.WriteAsync(Bytes(60, 2));
        // The reader at the live edge still gets every byte; only the copy is dropped.
        Assert.Equal(60, await reader.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
        Assert.False(body.CanReplay);
        Assert.False(await body.Done.WaitAsync(Timeout));
        await Assert.ThrowsAsync<IOException>(() => body.OpenReader().ReadAsync(buffer).AsTask());
    }

    [Fact]
    public async Task TheRequestEndingStopsWhoeverWaitsForTheWholeBody()
    {
        var pipe = new System.IO.Pipelines.Pipe();
        var body = new ReplayableBody(pipe.Reader.AsStream(), limit: 100);
        var done = body.Done;
        body.Dispose();
        Assert.False(await done.WaitAsync(Timeout));
    }

    [Theory]
    [InlineData("echo.shop.svc.cluster.local", "echo.shop.svc.cluster.local-shadow")]
    [InlineData("echo:80", "echo-shadow:80")]
    [InlineData("127.0.0.1:8080", "127.0.0.1-shadow:8080")]
    [InlineData("[::1]:80", "[::1]-shadow:80")]
    [InlineData("[::1]", "[::1]-shadow")]
    public void MirrorsGetEnvoysShadowHost(string host, string expected) => Assert.Equal(expected, RequestMirror.ShadowHost(host));
}
