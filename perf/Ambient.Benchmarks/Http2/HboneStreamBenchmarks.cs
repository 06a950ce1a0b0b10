using System.Net;
using System.Net.Sockets;
using Ambient.Benchmarks.Columns;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Http2;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Benchmarks.Http2;

/// <summary>
/// HBONE's HTTP/2 layer without TLS (h2c over loopback), so it measures framing, HPACK and flow control only:
/// opening a CONNECT stream (request HEADERS, 200, END_STREAM both ways) and DATA throughput through one stream
/// with Istio's windows (4 MiB stream / 16 MiB connection).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(MiBPerSecondColumn.Config))]
public class HboneStreamBenchmarks
{
    public const int MiBPerOperation = 64;
    private const long BytesPerOperation = MiBPerOperation * 1024L * 1024L;

    private readonly byte[] _chunk = new byte[64 * 1024];
    private Http2Connection _client = null!;
    private Http2Connection _server = null!;
    private Http2Stream _dataStream = null!;
    private HeaderField[] _connect = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await c.ConnectAsync(listener.LocalEndPoint!);
        Socket s = await listener.AcceptAsync();
        s.NoDelay = true;
        var options = new Http2Options();
        _server = Http2Connection.CreateServer(new NetworkStream(s, ownsSocket: true), options, OnStream, NullLogger.Instance);
        _client = Http2Connection.CreateClient(new NetworkStream(c, ownsSocket: true), options, NullLogger.Instance);
        _server.Start();
        _client.Start();
        _connect = HboneHeaders.ForConnect("10.1.0.7:8080", new IPEndPoint(IPAddress.Parse("10.1.0.3"), 41000), null);
        _dataStream = await _client.OpenStreamAsync(_connect, CancellationToken.None);
        await _dataStream.ReadResponseHeadersAsync(CancellationToken.None);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _client.DisposeAsync();
        await _server.DisposeAsync();
    }

    private async Task OnStream(Http2Stream stream)
    {
        await stream.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None);
        // Sink: read and discard until END_STREAM, then end our side.
        while (true)
        {
            var result = await stream.Input.ReadAsync();
            stream.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }
        await stream.CompleteWritesAsync(CancellationToken.None);
    }

    /// <summary>One tunnel's set-up and tear-down on a warm connection.</summary>
    [Benchmark]
    public async Task OpenConnectStream()
    {
        Http2Stream stream = await _client.OpenStreamAsync(_connect, CancellationToken.None);
        await stream.ReadResponseHeadersAsync(CancellationToken.None);
        await stream.CompleteWritesAsync(CancellationToken.None);
        await stream.Completion;
    }

    // TODO(http2): DATA throughput needs the sink to signal per-operation byte counts (one long-lived stream,
    // like RelayBenchmarks), e.g. a counter the sink loop above increments and a SemaphoreSlim per 64 MiB.
    [Benchmark(OperationsPerInvoke = MiBPerOperation)]
    public async Task StreamData()
    {
        for (long sent = 0; sent < BytesPerOperation; sent += _chunk.Length)
        {
            await _dataStream.WriteAsync(_chunk, CancellationToken.None);
        }
    }
}
