using System.Buffers;
using System.Text;

namespace Ambient.Mesh.Http2.Hpack;

/// <summary>
/// Decodes complete header blocks (the connection reassembles HEADERS + CONTINUATION first). One per connection,
/// used only by the read loop. Every block must be decoded, even one we refuse, to keep the table in step with the peer.
/// </summary>
internal sealed class HpackDecoder
{
    private readonly HpackDynamicTable _table;

    /// <param name="maxTableSize">The SETTINGS_HEADER_TABLE_SIZE we advertised: the peer may not make the table larger.</param>
    public HpackDecoder(int maxTableSize)
    {
        MaxAllowedTableSize = maxTableSize;
        _table = new HpackDynamicTable(maxTableSize);
    }

    /// <summary>Upper bound for dynamic table size updates from the peer.</summary>
    public int MaxAllowedTableSize { get; set; }

    internal HpackDynamicTable Table => _table;

    /// <summary>
    /// Decodes <paramref name="block"/> into <paramref name="headers"/>. When the decoded list (RFC 9113 section 6.5.2
    /// sizing) passes <paramref name="maxHeaderListSize"/>, decoding continues for the table's sake but fields are no
    /// longer added and the method returns false.
    /// </summary>
    /// <exception cref="HpackException">The block is malformed (the connection must send COMPRESSION_ERROR).</exception>
    public bool Decode(ReadOnlySpan<byte> block, List<HeaderField> headers, int maxHeaderListSize)
    {
        int pos = 0;
        long listSize = 0;
        bool fieldSeen = false;
        bool withinLimit = true;
        while (pos < block.Length)
        {
            byte b = block[pos];
            HeaderField field;
            if ((b & 0x80) != 0)
            {
                // Indexed field (section 6.1).
                int index = HpackInteger.Decode(block, ref pos, 7);
                field = Lookup(index);
            }
            else if ((b & 0x40) != 0)
            {
                // Literal with incremental indexing (section 6.2.1).
                field = ReadLiteral(block, ref pos, 6);
                _table.Insert(field);
            }
            else if ((b & 0x20) != 0)
            {
                // Dynamic table size update (section 6.3): only before the first field of a block (section 4.2).
                if (fieldSeen)
                {
                    throw new HpackException("Dynamic table size update after a header field.");
                }

                int size = HpackInteger.Decode(block, ref pos, 5);
                if (size > MaxAllowedTableSize)
                {
                    throw new HpackException($"Dynamic table size update to {size} exceeds the advertised {MaxAllowedTableSize}.");
                }

                _table.SetMaxSize(size);
                continue;
            }
            else
            {
                // Literal without indexing (0000) or never indexed (0001), section 6.2.2/6.2.3.
                field = ReadLiteral(block, ref pos, 4);
            }

            fieldSeen = true;
            listSize += field.Name.Length + field.Value.Length + HpackDynamicTable.EntryOverhead;
            if (listSize > maxHeaderListSize)
            {
                withinLimit = false;
            }

            if (withinLimit)
            {
                headers.Add(field);
            }
        }

        return withinLimit;
    }

    private HeaderField Lookup(int index)
    {
        if (index == 0)
        {
            throw new HpackException("Index 0 is not a valid header index.");
        }

        if (index <= HpackStaticTable.Count)
        {
            return HpackStaticTable.Get(index);
        }

        int dynamicIndex = index - HpackStaticTable.Count - 1;
        if (dynamicIndex >= _table.Count)
        {
            throw new HpackException($"Header index {index} out of range.");
        }

        return _table[dynamicIndex];
    }

    private HeaderField ReadLiteral(ReadOnlySpan<byte> block, ref int pos, int prefixBits)
    {
        int nameIndex = HpackInteger.Decode(block, ref pos, prefixBits);
        string name = nameIndex == 0 ? ReadString(block, ref pos, isName: true) : Lookup(nameIndex).Name;
        string value = ReadString(block, ref pos, isName: false);
        return new HeaderField(name, value);
    }

    /// <summary>
    /// Header names a mesh peer sends as literals on every request. A tunnel keeps its request headers for its whole
    /// life, so returning one shared string for these saves an allocation per stream and memory per open tunnel.
    /// </summary>
    private static readonly string[] s_knownNames =
        ["forwarded", "baggage", "traceparent", "tracestate", "x-forwarded-for", "x-request-id", "x-envoy-peer-metadata",
         "x-envoy-peer-metadata-id", "user-agent", "content-type", "content-length", "authorization", "accept", "host"];

    private static string Known(ReadOnlySpan<byte> name)
    {
        foreach (string known in s_knownNames)
        {
            if (known.Length == name.Length && IsAscii(known, name))
            {
                return known;
            }
        }

        return Encoding.Latin1.GetString(name);

        static bool IsAscii(string known, ReadOnlySpan<byte> name)
        {
            for (int i = 0; i < name.Length; i++)
            {
                if (known[i] != name[i])
                {
                    return false;
                }
            }

            return true;
        }
    }

    private static string ReadString(ReadOnlySpan<byte> block, ref int pos, bool isName)
    {
        if (pos >= block.Length)
        {
            throw new HpackException("Truncated string literal.");
        }

        bool huffman = (block[pos] & 0x80) != 0;
        int length = HpackInteger.Decode(block, ref pos, 7);
        if (length > block.Length - pos)
        {
            throw new HpackException("String literal longer than the header block.");
        }

        ReadOnlySpan<byte> raw = block.Slice(pos, length);
        pos += length;
        if (!huffman)
        {
            return isName ? Known(raw) : Encoding.Latin1.GetString(raw);
        }

        // The shortest code is 5 bits, so n bytes decode to at most n * 8 / 5 symbols.
        int max = (length * 8 / 5) + 1;
        byte[]? rented = null;
        Span<byte> buffer = max <= 512 ? stackalloc byte[512] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            int n = Huffman.Decode(raw, buffer);
            return isName ? Known(buffer[..n]) : Encoding.Latin1.GetString(buffer[..n]);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }
}
