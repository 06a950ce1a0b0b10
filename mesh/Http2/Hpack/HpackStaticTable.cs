namespace Ambient.Mesh.Http2.Hpack;

/// <summary>RFC 7541 Appendix A; index 1 is the first entry.</summary>
internal static class HpackStaticTable
{
    public const int Count = 61;

    private static readonly HeaderField[] s_entries =
    [
        new(":authority", ""),
        new(":method", "GET"),
        new(":method", "POST"),
        new(":path", "/"),
        new(":path", "/index.html"),
        new(":scheme", "http"),
        new(":scheme", "https"),
        new(":status", "200"),
        new(":status", "204"),
        new(":status", "206"),
        new(":status", "304"),
        new(":status", "400"),
        new(":status", "404"),
        new(":status", "500"),
        new("accept-charset", ""),
        new("accept-encoding", "gzip, deflate"),
        new("accept-language", ""),
        new("accept-ranges", ""),
        new("accept", ""),
        new("access-control-allow-origin", ""),
        new("age", ""),
        new("allow", ""),
        new("authorization", ""),
        new("cache-control", ""),
        new("content-disposition", ""),
        new("content-encoding", ""),
        new("content-language", ""),
        new("content-length", ""),
        new("content-location", ""),
        new("content-range", ""),
        new("content-type", ""),
        new("cookie", ""),
        new("date", ""),
        new("etag", ""),
        new("expect", ""),
        new("expires", ""),
        new("from", ""),
        new("host", ""),
        new("if-match", ""),
        new("if-modified-since", ""),
        new("if-none-match", ""),
        new("if-range", ""),
        new("if-unmodified-since", ""),
        new("last-modified", ""),
        new("link", ""),
        new("location", ""),
        new("max-forwards", ""),
        new("proxy-authenticate", ""),
        new("proxy-authorization", ""),
        new("range", ""),
        new("referer", ""),
        new("refresh", ""),
        new("retry-after", ""),
        new("server", ""),
        new("set-cookie", ""),
        new("strict-transport-security", ""),
        new("transfer-encoding", ""),
        new("user-agent", ""),
        new("via", ""),
        new("www-authenticate", ""),
    ];

    // Lookups for the encoder: the first index carrying a name, and the entries whose value is part of the entry.
    private static readonly Dictionary<string, int> s_nameIndex = BuildNameIndex();
    private static readonly Dictionary<HeaderField, int> s_fieldIndex = BuildFieldIndex();

    public static HeaderField Get(int index) => s_entries[index - 1];

    /// <summary>Index of an entry with this exact name and value, or 0.</summary>
    public static int FindField(HeaderField field) => s_fieldIndex.GetValueOrDefault(field);

    /// <summary>Lowest index with this name, or 0.</summary>
    public static int FindName(string name) => s_nameIndex.GetValueOrDefault(name);

    private static Dictionary<string, int> BuildNameIndex()
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < s_entries.Length; i++)
        {
            map.TryAdd(s_entries[i].Name, i + 1);
        }

        return map;
    }

    private static Dictionary<HeaderField, int> BuildFieldIndex()
    {
        var map = new Dictionary<HeaderField, int>();
        for (int i = 0; i < s_entries.Length; i++)
        {
            map.TryAdd(s_entries[i], i + 1);
        }

        return map;
    }
}
