using System.Net;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Http2.Frames;
using Ambient.Mesh.Http2.Hpack;
using Ambient.Mesh.Model;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Http2;

/// <summary>
/// The per-tunnel header work of HBONE: encoding the CONNECT header block (what every outbound tunnel pays) and
/// decoding it (every inbound tunnel), with a warm dynamic table as on a pooled connection, plus frame headers.
/// </summary>
[MemoryDiagnoser]
public class HpackBenchmarks
{
    private readonly byte[] _block = new byte[4096];
    private readonly byte[] _frame = new byte[Http2FrameHeader.Size];
    private readonly List<HeaderField> _decoded = new(8);
    private HeaderField[] _headers = null!;
    private HpackEncoder _encoder = null!;
    private HpackDecoder _decoder = null!;
    private int _blockLength;

    [GlobalSetup]
    public void Setup()
    {
        var source = new Workload
        {
            Uid = "cluster1//v1/Pod/shop/frontend-7d9",
            Name = "frontend-7d9",
            Namespace = "shop",
            ServiceAccount = "frontend",
            CanonicalName = "frontend",
            CanonicalRevision = "v1",
        };
        _headers = HboneHeaders.ForConnect("10.10.2.10:8080", new IPEndPoint(IPAddress.Parse("10.10.1.10"), 43210), source);
        _encoder = new HpackEncoder();
        _decoder = new HpackDecoder(4096);
        // Warm both tables the way a pooled connection's second tunnel finds them.
        _blockLength = Encode();
        if (!_decoder.Decode(_block.AsSpan(0, _blockLength), _decoded, 64 * 1024) || _decoded.Count != _headers.Length)
        {
            throw new InvalidOperationException("HPACK round trip of the CONNECT headers failed");
        }
        _blockLength = Encode();
    }

    [Benchmark]
    public int EncodeConnectHeaders() => Encode();

    [Benchmark]
    public int DecodeConnectHeaders()
    {
        _decoded.Clear();
        // Decoding the same block again keeps the table state stable: the block only references entries the warm-up added.
        _decoder.Decode(_block.AsSpan(0, _blockLength), _decoded, 64 * 1024);
        return _decoded.Count;
    }

    [Benchmark]
    public int FrameHeaderRoundTrip()
    {
        Http2FrameHeader.Write(_frame, 65536, Http2FrameType.Data, Http2FrameFlags.None, 7);
        return Http2FrameHeader.Read(_frame).Length;
    }

    private int Encode()
    {
        int n = _encoder.BeginBlock(_block);
        foreach (var h in _headers)
        {
            n += _encoder.EncodeField(h, _block.AsSpan(n));
        }
        return n;
    }
}
