using System.IO.Pipelines;
using System.Text;
using Ambient.Waypoint.Proxy;

namespace Ambient.Waypoint.Tests.Proxy;

/// <summary>
/// Protocol detection on undeclared ports: the first bytes decide between h2c, HTTP/1 and TCP as Envoy's
/// http_inspector does, and nothing read while deciding is lost to the path chosen.
/// </summary>
public sealed class ProtocolSnifferTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n", nameof(SniffedProtocol.Http1))]
    [InlineData("POST /orders?id=1 HTTP/1.0\r\nHost: x\r\n", nameof(SniffedProtocol.Http1))]
    [InlineData("PURGE /cache HTTP/1.1\r\n", nameof(SniffedProtocol.Http1))] // any token is a method
    [InlineData("GET / HTTP/1.1\n", nameof(SniffedProtocol.Http1))] // bare LF: Kestrel's to refuse, not passed raw
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", nameof(SniffedProtocol.Http2))]
    [InlineData("PING\r\n", nameof(SniffedProtocol.Tcp))] // redis inline command
    [InlineData("hello world\n", nameof(SniffedProtocol.Tcp))]
    [InlineData("GET /\r\n", nameof(SniffedProtocol.Tcp))] // HTTP/0.9 is not spoken here
    [InlineData("GET / FTP/1.1\r\n", nameof(SniffedProtocol.Tcp))]
    [InlineData("GET  / HTTP/1.1\r\n", nameof(SniffedProtocol.Tcp))]
    [InlineData("\r\nGET / HTTP/1.1\r\n", nameof(SniffedProtocol.Tcp))]
    [InlineData("\u0016\u0003\u0001\u0002\u0000", nameof(SniffedProtocol.Tcp))] // a TLS ClientHello
    [InlineData("PRI * HTTP/2.0\r\n\r\nXX", nameof(SniffedProtocol.Http1))] // not the preface, but a request line
    public void FirstBytesDecide(string head, string expected) =>
        Assert.Equal(expected, ProtocolSniffer.Classify(Encoding.Latin1.GetBytes(head))?.ToString());

    [Theory]
    [InlineData("")]
    [InlineData("G")]
    [InlineData("GET /index.html")]
    [InlineData("GET / HTTP/1.")]
    [InlineData("GET / HTTP/1.1\r")]
    [InlineData("PRI * HTTP/2.0\r\n")]
    public void APrefixOfARequestWaitsForMore(string head) =>
        Assert.Null(ProtocolSniffer.Classify(Encoding.Latin1.GetBytes(head)));

    [Fact]
    public void OnAPortDeclaredHttpOnlyTheVersionIsToldApart()
    {
        Assert.Equal(SniffedProtocol.Http1, ProtocolSniffer.Classify("hello"u8, declaredHttp: true));
        Assert.Null(ProtocolSniffer.Classify("PRI * HT"u8, declaredHttp: true));
        Assert.Equal(SniffedProtocol.Http2, ProtocolSniffer.Classify("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8, declaredHttp: true));
    }

    [Fact]
    public async Task ARequestLineInPiecesIsHttpAndEveryByteIsStillThere()
    {
        var pipe = new Pipe();
        var detect = ProtocolSniffer.DetectAsync(pipe.Reader, Timeout, declaredHttp: false);
        foreach (string piece in new[] { "GE", "T /a", "/b HTTP", "/1.1\r", "\nHost: x\r\n\r\n" })
        {
            await pipe.Writer.WriteAsync(Encoding.ASCII.GetBytes(piece));
            await Task.Yield();
        }
        Assert.Equal(SniffedProtocol.Http1, await detect.WaitAsync(Timeout));
        Assert.StartsWith("GET /a/b HTTP/1.1\r\n", await ReadAllAvailableAsync(pipe.Reader), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BytesSplitAcrossSegmentsAreJudgedWhole()
    {
        // The preface in five-byte segments: one multi-segment buffer for the sniffer.
        var preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
        Chunk? first = null, last = null;
        for (int i = 0; i < preface.Length; i += 5)
        {
            var chunk = new Chunk(preface.AsMemory(i, Math.Min(5, preface.Length - i)), i);
            first ??= chunk;
            last?.Link(chunk);
            last = chunk;
        }
        var sequence = new System.Buffers.ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
        Assert.False(sequence.IsSingleSegment);
        var reader = PipeReader.Create(sequence);
        Assert.Equal(SniffedProtocol.Http2, await ProtocolSniffer.DetectAsync(reader, Timeout, declaredHttp: false).WaitAsync(Timeout));
        Assert.Equal(Encoding.ASCII.GetString(preface), await ReadAllAvailableAsync(reader));
    }

    private sealed class Chunk : System.Buffers.ReadOnlySequenceSegment<byte>
    {
        public Chunk(ReadOnlyMemory<byte> memory, long index)
        {
            Memory = memory;
            RunningIndex = index;
        }

        public void Link(Chunk next) => Next = next;
    }

    [Fact]
    public async Task ASilentClientIsTcpAfterTheTimeoutAndItsLaterBytesFlow()
    {
        var pipe = new Pipe();
        Assert.Equal(SniffedProtocol.Tcp, await ProtocolSniffer.DetectAsync(pipe.Reader, TimeSpan.FromMilliseconds(50), declaredHttp: false).WaitAsync(Timeout));
        // The reader is still usable after the cancelled read: what the client sends later reaches the relay.
        await pipe.Writer.WriteAsync("QUIT\r\n"u8.ToArray());
        Assert.Equal("QUIT\r\n", await ReadAllAvailableAsync(pipe.Reader));
    }

    [Fact]
    public async Task ASilentClientOnAPortDeclaredHttpIsDropped()
    {
        var pipe = new Pipe();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => ProtocolSniffer.DetectAsync(pipe.Reader, TimeSpan.FromMilliseconds(50), declaredHttp: true).WaitAsync(Timeout));
    }

    [Fact]
    public async Task NonHttpBytesAreTcpAtOnceAndKept()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("\0\0\0\u0008hello"u8.ToArray());
        Assert.Equal(SniffedProtocol.Tcp, await ProtocolSniffer.DetectAsync(pipe.Reader, Timeout, declaredHttp: false).WaitAsync(Timeout));
        Assert.Equal("\0\0\0\u0008hello", await ReadAllAvailableAsync(pipe.Reader));
    }

    [Fact]
    public async Task AClientThatEndsSilentlyIsTcpAndOneThatEndsMidRequestIsHttp()
    {
        var silent = new Pipe();
        await silent.Writer.CompleteAsync();
        Assert.Equal(SniffedProtocol.Tcp, await ProtocolSniffer.DetectAsync(silent.Reader, Timeout, declaredHttp: false).WaitAsync(Timeout));

        var partial = new Pipe();
        await partial.Writer.WriteAsync("GET /x"u8.ToArray());
        await partial.Writer.CompleteAsync();
        Assert.Equal(SniffedProtocol.Http1, await ProtocolSniffer.DetectAsync(partial.Reader, Timeout, declaredHttp: false).WaitAsync(Timeout));
    }

    [Fact]
    public async Task AnEndlessRequestLineGoesToKestrelToBeRefused()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Encoding.ASCII.GetBytes("GET /" + new string('a', ProtocolSniffer.MaxInspect)));
        Assert.Equal(SniffedProtocol.Http1, await ProtocolSniffer.DetectAsync(pipe.Reader, Timeout, declaredHttp: false).WaitAsync(Timeout));
    }

    private static async Task<string> ReadAllAvailableAsync(PipeReader reader)
    {
        var result = await reader.ReadAsync().AsTask().WaitAsync(Timeout);
        string text = Encoding.Latin1.GetString(System.Buffers.BuffersExtensions.ToArray(result.Buffer));
        reader.AdvanceTo(result.Buffer.End);
        return text;
    }
}
