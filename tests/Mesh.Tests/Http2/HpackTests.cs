using Ambient.Mesh.Http2;
using Ambient.Mesh.Http2.Hpack;

namespace Ambient.Mesh.Tests.Http2;

public sealed class HpackTests
{
    private static readonly HeaderField[][] s_requests =
    [
        [new(":method", "GET"), new(":scheme", "http"), new(":path", "/"), new(":authority", "www.example.com")],
        [new(":method", "GET"), new(":scheme", "http"), new(":path", "/"), new(":authority", "www.example.com"), new("cache-control", "no-cache")],
        [new(":method", "GET"), new(":scheme", "https"), new(":path", "/index.html"), new(":authority", "www.example.com"), new("custom-key", "custom-value")],
    ];

    private static readonly HeaderField[][] s_responses =
    [
        [new(":status", "302"), new("cache-control", "private"), new("date", "Mon, 21 Oct 2013 20:13:21 GMT"), new("location", "https://www.example.com")],
        [new(":status", "307"), new("cache-control", "private"), new("date", "Mon, 21 Oct 2013 20:13:21 GMT"), new("location", "https://www.example.com")],
        [
            new(":status", "200"), new("cache-control", "private"), new("date", "Mon, 21 Oct 2013 20:13:22 GMT"), new("location", "https://www.example.com"),
            new("content-encoding", "gzip"), new("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
        ],
    ];

    // RFC 7541 C.3 (requests, no Huffman) and C.4 (requests, Huffman).
    private static readonly string[] s_c3 = ["828684410f7777772e6578616d706c652e636f6d", "828684be58086e6f2d6361636865", "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"];
    private static readonly string[] s_c4 = ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf", "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"];

    // RFC 7541 C.5 (responses, no Huffman, 256-byte table) and C.6 (the same with Huffman).
    private static readonly string[] s_c5 =
    [
        "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
        "4803333037c1c0bf",
        "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
    ];

    private static readonly string[] s_c6 =
    [
        "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
        "4883640effc1c0bf",
        "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
    ];

    [Theory]
    [InlineData("400a637573746f6d2d6b65790d637573746f6d2d686561646572", "custom-key", "custom-header", 55)] // C.2.1
    [InlineData("040c2f73616d706c652f70617468", ":path", "/sample/path", 0)] // C.2.2
    [InlineData("100870617373776f726406736563726574", "password", "secret", 0)] // C.2.3
    [InlineData("82", ":method", "GET", 0)] // C.2.4
    public void DecodesSingleFieldExamples(string hex, string name, string value, int tableSize)
    {
        var decoder = new HpackDecoder(4096);
        var headers = new List<HeaderField>();
        Assert.True(decoder.Decode(Convert.FromHexString(hex), headers, 65536));
        Assert.Equal([new HeaderField(name, value)], headers);
        Assert.Equal(tableSize, decoder.Table.Size);
    }

    [Fact]
    public void DecodesRequestSequences()
    {
        foreach (string[] blocks in new[] { s_c3, s_c4 })
        {
            var decoder = new HpackDecoder(4096);
            for (int i = 0; i < blocks.Length; i++)
            {
                var headers = new List<HeaderField>();
                decoder.Decode(Convert.FromHexString(blocks[i]), headers, 65536);
                Assert.Equal(s_requests[i], headers);
            }

            // After C.3.3 / C.4.3 the table holds three entries, 164 bytes.
            Assert.Equal(3, decoder.Table.Count);
            Assert.Equal(164, decoder.Table.Size);
            Assert.Equal(new HeaderField("custom-key", "custom-value"), decoder.Table[0]);
        }
    }

    [Fact]
    public void DecodesResponseSequencesWithEviction()
    {
        foreach (string[] blocks in new[] { s_c5, s_c6 })
        {
            var decoder = new HpackDecoder(256);
            decoder.Table.SetMaxSize(256);
            for (int i = 0; i < blocks.Length; i++)
            {
                var headers = new List<HeaderField>();
                decoder.Decode(Convert.FromHexString(blocks[i]), headers, 65536);
                Assert.Equal(s_responses[i], headers);
            }

            // C.5.3: three entries remain (215 bytes); the older ones were evicted.
            Assert.Equal(3, decoder.Table.Count);
            Assert.Equal(215, decoder.Table.Size);
            Assert.Equal("set-cookie", decoder.Table[0].Name);
            Assert.Equal(new HeaderField("date", "Mon, 21 Oct 2013 20:13:22 GMT"), decoder.Table[2]);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EncoderReproducesRequestExamples(bool huffman)
    {
        var encoder = new HpackEncoder(useHuffman: huffman);
        string[] expected = huffman ? s_c4 : s_c3;
        for (int i = 0; i < s_requests.Length; i++)
        {
            Assert.Equal(expected[i], Convert.ToHexStringLower(Encode(encoder, s_requests[i])));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EncoderReproducesResponseExamples(bool huffman)
    {
        var encoder = new HpackEncoder(maxTableSizeCap: 256, initialTableSize: 256, useHuffman: huffman);
        string[] expected = huffman ? s_c6 : s_c5;
        for (int i = 0; i < s_responses.Length; i++)
        {
            Assert.Equal(expected[i], Convert.ToHexStringLower(Encode(encoder, s_responses[i])));
        }
    }

    [Fact]
    public void EncoderAnnouncesTableSizeChangesSmallestFirst()
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder(4096);
        encoder.SetPeerMaxTableSize(0);
        encoder.SetPeerMaxTableSize(100);
        byte[] block = Encode(encoder, [new("x-a", "1")]);
        // 0x20 = size 0, then 0x3f 0x45 = size 100, then the field.
        Assert.Equal("203f45", Convert.ToHexStringLower(block[..3]));
        var headers = new List<HeaderField>();
        decoder.Decode(block, headers, 65536);
        Assert.Equal(100, decoder.Table.MaxSize);
        Assert.Equal([new HeaderField("x-a", "1")], headers);
    }

    [Fact]
    public void RoundTripsHbonePerRequestHeaders()
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder(4096);
        for (int i = 0; i < 200; i++)
        {
            HeaderField[] fields =
            [
                new(":method", "CONNECT"), new(":authority", $"10.0.{i % 7}.3:8080"),
                new("forwarded", $"for=\"10.1.1.1:{40000 + i}\""), new("traceparent", $"00-{i:x32}-{i:x16}-01"),
                new("baggage", "k8s.cluster.name=Kubernetes,k8s.namespace.name=default,service.name=echo"),
            ];
            byte[] block = Encode(encoder, fields);
            var headers = new List<HeaderField>();
            decoder.Decode(block, headers, 65536);
            Assert.Equal(fields, headers);
        }

        Assert.True(decoder.Table.Size <= 4096);
        Assert.Equal(encoder.Table.Size, decoder.Table.Size);
    }

    [Fact]
    public void SizeUpdateShrinksTableAndEvicts()
    {
        var decoder = new HpackDecoder(4096);
        decoder.Decode(Convert.FromHexString(s_c3[0]), [], 65536);
        decoder.Decode(Convert.FromHexString(s_c3[1]), [], 65536);
        Assert.Equal(2, decoder.Table.Count);

        // Size update to 60 keeps only the newest entry (cache-control: no-cache = 53 bytes), then index 62 is it.
        var headers = new List<HeaderField>();
        decoder.Decode([0x3f, 0x1d, 0xbe], headers, 65536);
        Assert.Equal(1, decoder.Table.Count);
        Assert.Equal([new HeaderField("cache-control", "no-cache")], headers);
    }

    [Theory]
    [InlineData(10, 5, "0a")] // C.1.1
    [InlineData(1337, 5, "1f9a0a")] // C.1.2
    [InlineData(42, 8, "2a")] // C.1.3
    [InlineData(31, 5, "1f00")] // exactly the prefix maximum needs a zero continuation byte
    [InlineData(int.MaxValue, 7, "7f80ffffff07")]
    public void IntegersRoundTrip(int value, int prefix, string hex)
    {
        Span<byte> buffer = stackalloc byte[8];
        int n = HpackInteger.Encode(value, prefix, 0, buffer);
        Assert.Equal(hex, Convert.ToHexStringLower(buffer[..n]));
        Assert.Equal(n, HpackInteger.EncodedLength(value, prefix));
        int pos = 0;
        Assert.Equal(value, HpackInteger.Decode(buffer[..n], ref pos, prefix));
        Assert.Equal(n, pos);
    }

    [Theory]
    [InlineData("ff8080808080808001")] // too many continuation bytes
    [InlineData("ff80ffffff08")] // 2^31 + 126: over int.MaxValue
    [InlineData("ff80")] // truncated
    [InlineData("80")] // index 0
    [InlineData("c0")] // index 64: dynamic table empty
    [InlineData("ff00")] // index 127: out of range
    [InlineData("410f7777")] // string longer than the block
    [InlineData("0085f2b24a84ff874951fffffffa7f")] // Huffman value containing EOS (from h2spec)
    [InlineData("4182ffff")] // padding of 16 bits
    [InlineData("418100")] // padding not all ones ('0' is 00000, then 000 padding)
    [InlineData("823fe11f")] // size update (4096+...) after a field
    [InlineData("3fe21f")] // size update above the advertised 4096
    public void RejectsMalformedBlocks(string hex)
    {
        var decoder = new HpackDecoder(4096);
        Assert.Throws<HpackException>(() => decoder.Decode(Convert.FromHexString(hex), [], 65536));
    }

    [Fact]
    public void OversizedListIsDecodedButReported()
    {
        var decoder = new HpackDecoder(4096);
        var headers = new List<HeaderField>();
        Assert.False(decoder.Decode(Convert.FromHexString(s_c3[0]), headers, 100));
        // The table still learned the :authority entry so later blocks decode correctly.
        Assert.Equal(1, decoder.Table.Count);
    }

    [Fact]
    public void HuffmanRoundTripsEveryByte()
    {
        var all = new char[256];
        for (int i = 0; i < all.Length; i++)
        {
            all[i] = (char)i;
        }

        string value = new(all);
        byte[] encoded = new byte[Huffman.GetEncodedLength(value)];
        Assert.Equal(encoded.Length, Huffman.Encode(value, encoded));
        byte[] decoded = new byte[encoded.Length * 8 / 5 + 1];
        int n = Huffman.Decode(encoded, decoded);
        Assert.Equal(256, n);
        for (int i = 0; i < 256; i++)
        {
            Assert.Equal(i, decoded[i]);
        }
    }

    private static byte[] Encode(HpackEncoder encoder, IReadOnlyList<HeaderField> fields)
    {
        var buffer = new byte[4096];
        int n = encoder.BeginBlock(buffer);
        foreach (HeaderField f in fields)
        {
            n += encoder.EncodeField(f, buffer.AsSpan(n));
        }

        return buffer[..n];
    }
}
