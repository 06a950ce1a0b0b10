namespace Ambient.Mesh.Http2.Hpack;

/// <summary>
/// Encodes header blocks. One per connection; blocks must be written to the wire in the order they were encoded
/// (the connection encodes under its write lock). HBONE sends a handful of fields per stream, so the policy is simple:
/// exact matches become one-byte indexes, repeated fields are added to the dynamic table, per-request values
/// (trace ids, source ports) are sent without indexing so they do not evict the useful entries.
/// </summary>
internal sealed class HpackEncoder
{
    private readonly HpackDynamicTable _table;
    private readonly int _maxTableSizeCap;
    private readonly bool _useHuffman;
    private int _smallestPendingSize = -1;
    private int _pendingSize = -1;

    /// <param name="maxTableSizeCap">The most table memory we are willing to use, whatever the peer allows.</param>
    /// <param name="initialTableSize">The size both sides assume before any SETTINGS (4096 in HTTP/2).</param>
    public HpackEncoder(int maxTableSizeCap = 4096, int initialTableSize = 4096, bool useHuffman = true)
    {
        _maxTableSizeCap = maxTableSizeCap;
        _useHuffman = useHuffman;
        _table = new HpackDynamicTable(initialTableSize);
        if (maxTableSizeCap < initialTableSize)
        {
            SetPeerMaxTableSize(initialTableSize);
        }
    }

    internal HpackDynamicTable Table => _table;

    /// <summary>Upper bound of <see cref="BeginBlock"/> output.</summary>
    public const int MaxBlockPrefixLength = 12;

    /// <summary>Upper bound of the bytes <see cref="EncodeField"/> writes for this field.</summary>
    public static int MaxFieldLength(HeaderField field) => 16 + field.Name.Length + field.Value.Length;

    /// <summary>The peer's SETTINGS_HEADER_TABLE_SIZE changed; the new size is announced at the next block.</summary>
    public void SetPeerMaxTableSize(int peerSize)
    {
        int size = Math.Min(peerSize, _maxTableSizeCap);
        if (size == _table.MaxSize && _pendingSize < 0)
        {
            return;
        }

        // RFC 7541 section 4.2: if the size shrank and grew again between blocks, the smallest must be signalled first.
        _smallestPendingSize = _smallestPendingSize < 0 ? size : Math.Min(_smallestPendingSize, size);
        _pendingSize = size;
        _table.SetMaxSize(size);
    }

    /// <summary>Writes any pending dynamic table size updates; call once at the start of each header block.</summary>
    public int BeginBlock(Span<byte> destination)
    {
        if (_pendingSize < 0)
        {
            return 0;
        }

        int n = 0;
        if (_smallestPendingSize < _pendingSize)
        {
            n += HpackInteger.Encode(_smallestPendingSize, 5, 0x20, destination);
        }

        n += HpackInteger.Encode(_pendingSize, 5, 0x20, destination[n..]);
        _pendingSize = -1;
        _smallestPendingSize = -1;
        return n;
    }

    /// <summary>Encodes one field; <paramref name="destination"/> must hold <see cref="MaxFieldLength"/> bytes.</summary>
    /// <exception cref="ArgumentException">A character outside Latin-1.</exception>
    public int EncodeField(HeaderField field, Span<byte> destination)
    {
        int index = HpackStaticTable.FindField(field);
        if (index == 0)
        {
            index = FindDynamic(field, out _);
        }

        if (index != 0)
        {
            return HpackInteger.Encode(index, 7, 0x80, destination);
        }

        int nameIndex = HpackStaticTable.FindName(field.Name);
        if (nameIndex == 0)
        {
            FindDynamic(field, out nameIndex);
        }

        int n;
        bool index2Table = ShouldIndex(field);
        if (index2Table)
        {
            n = HpackInteger.Encode(nameIndex, 6, 0x40, destination);
        }
        else
        {
            // Never-indexed (0x10) for credentials so intermediaries keep them out of tables too (RFC 7541 section 7.1.3).
            byte flags = IsSensitive(field.Name) ? (byte)0x10 : (byte)0x00;
            n = HpackInteger.Encode(nameIndex, 4, flags, destination);
        }

        if (nameIndex == 0)
        {
            n += WriteString(field.Name, destination[n..]);
        }

        n += WriteString(field.Value, destination[n..]);
        if (index2Table)
        {
            _table.Insert(field);
        }

        return n;
    }

    private bool ShouldIndex(HeaderField field)
    {
        if (IsSensitive(field.Name) || HpackDynamicTable.EntrySize(field) > _table.MaxSize / 2)
        {
            return false;
        }

        // Values that change on every request would only churn the table.
        return field.Name switch
        {
            "traceparent" or "tracestate" or "forwarded" or "content-length" or ":path" or "x-request-id" => false,
            _ => true,
        };
    }

    private static bool IsSensitive(string name) => name is "authorization" or "proxy-authorization";

    /// <summary>HPACK index of an exact match in the dynamic table (or 0); <paramref name="nameIndex"/> gets a name-only match.</summary>
    private int FindDynamic(HeaderField field, out int nameIndex)
    {
        nameIndex = 0;
        for (int i = 0; i < _table.Count; i++)
        {
            HeaderField entry = _table[i];
            if (string.Equals(entry.Name, field.Name, StringComparison.Ordinal))
            {
                if (nameIndex == 0)
                {
                    nameIndex = HpackStaticTable.Count + 1 + i;
                }

                if (string.Equals(entry.Value, field.Value, StringComparison.Ordinal))
                {
                    return HpackStaticTable.Count + 1 + i;
                }
            }
        }

        return 0;
    }

    private int WriteString(string value, Span<byte> destination)
    {
        foreach (char c in value)
        {
            if (c > 0xFF)
            {
                throw new ArgumentException("Header fields must be Latin-1 (RFC 9113 section 8.2.1).", nameof(value));
            }
        }

        if (_useHuffman)
        {
            int huffmanLength = Huffman.GetEncodedLength(value);
            if (huffmanLength <= value.Length)
            {
                int n = HpackInteger.Encode(huffmanLength, 7, 0x80, destination);
                return n + Huffman.Encode(value, destination[n..]);
            }
        }

        int written = HpackInteger.Encode(value.Length, 7, 0x00, destination);
        for (int i = 0; i < value.Length; i++)
        {
            destination[written + i] = (byte)value[i];
        }

        return written + value.Length;
    }
}
