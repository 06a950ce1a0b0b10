namespace Ambient.Mesh.Http2.Hpack;

/// <summary>
/// The HPACK Huffman code (RFC 7541 Appendix B). The published code is canonical: codes are assigned in order of
/// (length, symbol), so the 257 code lengths are enough to rebuild every code, and decoding can compare a prefix
/// against a per-length limit instead of walking a tree.
/// </summary>
internal static class Huffman
{
    public const int Eos = 256;
    private const int MinLength = 5;
    private const int MaxLength = 30;

    // Code length in bits of each symbol 0..255 and EOS (256), RFC 7541 Appendix B.
    private static ReadOnlySpan<byte> Lengths =>
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
        5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
        6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
        30,
    ];

    /// <summary>Right-aligned code of each symbol.</summary>
    private static readonly uint[] s_codes = new uint[257];

    /// <summary>Symbols sorted by (length, value): the canonical order.</summary>
    private static readonly short[] s_sorted = new short[257];

    /// <summary>Per length: first code, one past the last code, and where its symbols start in <see cref="s_sorted"/>.</summary>
    private static readonly uint[] s_first = new uint[MaxLength + 1];
    private static readonly uint[] s_limit = new uint[MaxLength + 1];
    private static readonly int[] s_offset = new int[MaxLength + 1];

#pragma warning disable CA1810 // the tables depend on each other; one static constructor keeps the order obvious
    static Huffman()
#pragma warning restore CA1810
    {
        ReadOnlySpan<byte> lengths = Lengths;
        int n = 0;
        for (int len = MinLength; len <= MaxLength; len++)
        {
            s_offset[len] = n;
            for (int sym = 0; sym < lengths.Length; sym++)
            {
                if (lengths[sym] == len)
                {
                    s_sorted[n++] = (short)sym;
                }
            }
        }

        uint code = 0;
        for (int len = MinLength; len <= MaxLength; len++)
        {
            int count = (len < MaxLength ? s_offset[len + 1] : n) - s_offset[len];
            s_first[len] = code;
            s_limit[len] = code + (uint)count;
            for (int i = 0; i < count; i++)
            {
                s_codes[s_sorted[s_offset[len] + i]] = code + (uint)i;
            }

            code = (code + (uint)count) << 1;
        }
    }

    /// <summary>Bytes needed to Huffman-encode <paramref name="value"/> (characters must be Latin-1).</summary>
    public static int GetEncodedLength(string value)
    {
        ReadOnlySpan<byte> lengths = Lengths;
        long bits = 0;
        foreach (char c in value)
        {
            bits += lengths[c & 0xFF];
        }

        return (int)((bits + 7) >> 3);
    }

    /// <summary>Encodes into <paramref name="destination"/>, which must hold <see cref="GetEncodedLength"/> bytes.</summary>
    public static int Encode(string value, Span<byte> destination)
    {
        ReadOnlySpan<byte> lengths = Lengths;
        ulong acc = 0;
        int bits = 0;
        int written = 0;
        foreach (char c in value)
        {
            int sym = c & 0xFF;
            int len = lengths[sym];
            acc = (acc << len) | s_codes[sym];
            bits += len;
            while (bits >= 8)
            {
                bits -= 8;
                destination[written++] = (byte)(acc >> bits);
            }
        }

        if (bits > 0)
        {
            // Pad with the most significant bits of EOS, which are all ones (RFC 7541 section 5.2).
            destination[written++] = (byte)((acc << (8 - bits)) | (0xFFu >> bits));
        }

        return written;
    }

    /// <summary>Decodes <paramref name="source"/>; <paramref name="destination"/> needs source.Length * 8 / 5 bytes.</summary>
    /// <exception cref="HpackException">EOS in the data, or padding that is longer than 7 bits or not all ones.</exception>
    public static int Decode(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        ulong acc = 0;
        int bits = 0;
        int pos = 0;
        int written = 0;
        while (true)
        {
            while (bits <= 56 && pos < source.Length)
            {
                acc = (acc << 8) | source[pos++];
                bits += 8;
            }

            if (bits < MinLength)
            {
                break;
            }

            int len = MinLength;
            uint prefix = 0;
            bool matched = false;
            for (; len <= MaxLength && len <= bits; len++)
            {
                prefix = (uint)(acc >> (bits - len)) & (uint)((1UL << len) - 1);
                if (prefix < s_limit[len])
                {
                    matched = true;
                    break;
                }
            }

            if (!matched)
            {
                break;
            }

            int sym = s_sorted[s_offset[len] + (int)(prefix - s_first[len])];
            if (sym == Eos)
            {
                throw new HpackException("Huffman-encoded string contains EOS.");
            }

            destination[written++] = (byte)sym;
            bits -= len;
        }

        if (bits > 7)
        {
            throw new HpackException("Huffman padding longer than 7 bits.");
        }

        ulong mask = (1UL << bits) - 1;
        if ((acc & mask) != mask)
        {
            throw new HpackException("Huffman padding is not a prefix of EOS.");
        }

        return written;
    }
}
