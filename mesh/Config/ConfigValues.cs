using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.Config;

/// <summary>
/// Parsers for the scalar forms the config uses. Each returns false with a message instead of throwing,
/// so the loader can attach the message to a field and a line.
/// </summary>
internal static class ConfigValues
{
    /// <summary>An IP address; an IPv4-mapped IPv6 address is stored as IPv4 so lookups agree.</summary>
    public static bool TryParseIp(string text, out IPAddress address, out string error)
    {
        address = IPAddress.None;
        // IPAddress.TryParse accepts "1" or "1.2" (inet_aton forms) and "%scope" suffixes; a config typo
        // such as "10.0.1" must not silently become 10.0.0.1.
        if (text.Length == 0 || text.Contains('%') || (!text.Contains(':') && CountChar(text, '.') != 3)
            || !IPAddress.TryParse(text, out IPAddress? parsed))
        {
            error = $"'{text}' is not an IP address";
            return false;
        }
        address = Normalize(parsed);
        error = "";
        return true;
    }

    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>A CIDR ("10.0.0.0/8", "fd00::/8") or a bare address (a /32 or /128), as Istio's policy IP fields.</summary>
    public static bool TryParseCidr(string text, out IpNet net, out string error)
    {
        net = default;
        int slash = text.IndexOf('/');
        string ipText = slash < 0 ? text : text[..slash];
        if (!TryParseIp(ipText, out IPAddress ip, out error))
        {
            error = $"'{text}' is not an IP address or CIDR (e.g. 10.0.0.0/8)";
            return false;
        }
        int max = ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int prefix = max;
        if (slash >= 0)
        {
            ReadOnlySpan<char> p = text.AsSpan(slash + 1);
            if (!int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > max)
            {
                error = $"'{text}' has an invalid prefix length (0-{max})";
                return false;
            }
            // "::ffff:10.0.0.0/104" was normalised to IPv4 above: carry the prefix over.
            if (max == 32 && ipText.Contains(':'))
            {
                prefix = Math.Max(0, prefix - 96);
            }
        }
        net = new IpNet(ip, prefix);
        return true;
    }

    /// <summary>"network/ip" as Istio's NetworkAddress; the network may be empty ("/10.0.0.1"). A bare IP means the default network.</summary>
    public static bool TryParseNetworkAddress(string text, out NetworkAddress address, out string error)
    {
        address = new NetworkAddress("", IPAddress.None);
        int slash = text.IndexOf('/');
        string network = slash < 0 ? "" : text[..slash];
        string ipText = slash < 0 ? text : text[(slash + 1)..];
        if (!TryParseIp(ipText, out IPAddress ip, out _))
        {
            error = $"'{text}' is not a network address; expected \"<network>/<ip>\" (e.g. \"/10.96.0.10\" for the default network)";
            return false;
        }
        address = new NetworkAddress(network, ip);
        error = "";
        return true;
    }

    /// <summary>"ip:port" or "[ipv6]:port". Port 0 is allowed (an ephemeral port, for tests).</summary>
    public static bool TryParseEndpoint(string text, out IPEndPoint endpoint, out string error)
    {
        endpoint = new IPEndPoint(IPAddress.None, 0);
        string host;
        string portText;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf("]:", StringComparison.Ordinal);
            if (close < 0)
            {
                error = $"'{text}' is not \"[ipv6]:port\"";
                return false;
            }
            host = text[1..close];
            portText = text[(close + 2)..];
        }
        else
        {
            int colon = text.LastIndexOf(':');
            if (colon < 0 || text.IndexOf(':') != colon)
            {
                error = $"'{text}' is not \"ip:port\" (write IPv6 as \"[::]:15008\")";
                return false;
            }
            host = text[..colon];
            portText = text[(colon + 1)..];
        }
        if (!TryParseIp(host, out IPAddress ip, out _))
        {
            error = $"'{host}' in '{text}' is not an IP address (use 127.0.0.1 rather than localhost)";
            return false;
        }
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            error = $"'{portText}' in '{text}' is not a port (0-65535)";
            return false;
        }
        endpoint = new IPEndPoint(ip, port);
        error = "";
        return true;
    }

    /// <summary>
    /// A Go-style duration as Istio and Kubernetes users write them: "24h", "90m", "1h30m", "1.5s", "500ms".
    /// A bare number is rejected: "30" could mean seconds or minutes.
    /// </summary>
    public static bool TryParseDuration(string text, out TimeSpan value, out string error)
    {
        value = TimeSpan.Zero;
        error = $"'{text}' is not a duration; write e.g. \"24h\", \"90m\", \"30s\" or \"500ms\"";
        if (text == "0")
        {
            return true;
        }
        ReadOnlySpan<char> s = text.AsSpan().Trim();
        if (s.IsEmpty)
        {
            return false;
        }
        double totalMs = 0;
        while (!s.IsEmpty)
        {
            int i = 0;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }
            if (i == 0 || !double.TryParse(s[..i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            {
                return false;
            }
            s = s[i..];
            int u = 0;
            while (u < s.Length && (char.IsAsciiLetter(s[u]) || s[u] == 'µ'))
            {
                u++;
            }
            double unitMs = s[..u] switch
            {
                "h" => 3_600_000,
                "m" => 60_000,
                "s" => 1_000,
                "ms" => 1,
                "us" or "µs" => 0.001,
                "ns" => 0.000_001,
                _ => -1,
            };
            if (unitMs < 0)
            {
                return false;
            }
            totalMs += number * unitMs;
            s = s[u..];
        }
        if (totalMs > TimeSpan.MaxValue.TotalMilliseconds)
        {
            error = $"'{text}' is too long";
            return false;
        }
        value = TimeSpan.FromMilliseconds(totalMs);
        error = "";
        return true;
    }

    private static int CountChar(string s, char c)
    {
        int n = 0;
        foreach (char x in s)
        {
            if (x == c)
            {
                n++;
            }
        }
        return n;
    }

    /// <summary>Edit distance, to suggest the intended key for a typo.</summary>
    public static int Distance(string a, string b)
    {
        if (a.Length > 64 || b.Length > 64)
        {
            return int.MaxValue; // no suggestion for absurd keys; also bounds the stackalloc
        }
        a = a.ToLowerInvariant();
        b = b.ToLowerInvariant();
        Span<int> prev = stackalloc int[b.Length + 1];
        Span<int> cur = stackalloc int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            cur.CopyTo(prev);
        }
        return prev[b.Length];
    }
}
