namespace Ambient.Mesh.Http2.Hpack;

/// <summary>HPACK prefix integers (RFC 7541 section 5.1).</summary>
internal static class HpackInteger
{
    // 2^31 - 1 needs at most 5 continuation bytes after a full prefix; anything longer is an attack or garbage.
    private const int MaxContinuationBytes = 5;

    /// <summary>Decodes an integer whose prefix occupies the low <paramref name="prefixBits"/> of source[pos].</summary>
    /// <exception cref="HpackException">Truncated, or larger than <see cref="int.MaxValue"/>.</exception>
    public static int Decode(ReadOnlySpan<byte> source, ref int pos, int prefixBits)
    {
        if (pos >= source.Length)
        {
            throw new HpackException("Truncated integer.");
        }

        int mask = (1 << prefixBits) - 1;
        int value = source[pos++] & mask;
        if (value < mask)
        {
            return value;
        }

        long result = value;
        for (int i = 0, shift = 0; ; i++, shift += 7)
        {
            if (i == MaxContinuationBytes)
            {
                throw new HpackException("Integer encoding too long.");
            }

            if (pos >= source.Length)
            {
                throw new HpackException("Truncated integer.");
            }

            byte b = source[pos++];
            result += (long)(b & 0x7F) << shift;
            if (result > int.MaxValue)
            {
                throw new HpackException("Integer exceeds 2^31-1.");
            }

            if ((b & 0x80) == 0)
            {
                return (int)result;
            }
        }
    }

    /// <summary>Writes <paramref name="value"/> with the high bits of the first byte set to <paramref name="firstByteFlags"/>.</summary>
    public static int Encode(int value, int prefixBits, byte firstByteFlags, Span<byte> destination)
    {
        int mask = (1 << prefixBits) - 1;
        if (value < mask)
        {
            destination[0] = (byte)(firstByteFlags | value);
            return 1;
        }

        destination[0] = (byte)(firstByteFlags | mask);
        int n = 1;
        uint rest = (uint)(value - mask);
        while (rest >= 0x80)
        {
            destination[n++] = (byte)(rest | 0x80);
            rest >>= 7;
        }

        destination[n++] = (byte)rest;
        return n;
    }

    /// <summary>Bytes <see cref="Encode"/> writes.</summary>
    public static int EncodedLength(int value, int prefixBits)
    {
        int mask = (1 << prefixBits) - 1;
        if (value < mask)
        {
            return 1;
        }

        int n = 2;
        for (uint rest = (uint)(value - mask); rest >= 0x80; rest >>= 7)
        {
            n++;
        }

        return n;
    }
}
