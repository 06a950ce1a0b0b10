using System.IO.Pipelines;
using Ambient.Mesh.Http2;

namespace Ambient.Mesh.Tests.Http2;

public sealed class Http2ConnectionTests
{
    private static readonly TimeSpan s_timeout = Http2TestUtil.Timeout;

    [Fact]
    public async Task SingleStreamEchoes()
    {
        var (client, server) = await Http2TestUtil.CreatePairAsync(Http2TestUtil.EchoHandler);
        await using (client)
        await using (server)
        {
            Http2Stream stream = await client.OpenStreamAsync(Http2TestUtil.Connect("10.0.0.1:8080"), CancellationToken.None).AsTask().WaitAsync(s_timeout);
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
        }
    }
}
