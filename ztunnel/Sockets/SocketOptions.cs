using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Ambient.Ztunnel.Sockets;

/// <summary>Linux socket options the data path needs, set through .NET's raw socket option API.</summary>
internal static class SocketOptions
{
    private const int SolIp = 0;
    private const int SolIpv6 = 41;
    private const int SolSocket = 1;
    private const int SoOriginalDst = 80; // SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST share the number.
    private const int SoReuseAddr = 2;
    private const int SoMark = 36;
    private const int IpTransparent = 19;
    private const int Ipv6Transparent = 75;

    /// <summary>The mark Istio's in-pod rules use to recognise (and skip) the agent's own sockets.</summary>
    public const uint AgentMark = 0x539;

    /// <summary>
    /// The destination a REDIRECTed connection was originally sent to (netfilter's conntrack keeps it), or null when
    /// the connection was not redirected.
    /// </summary>
    public static IPEndPoint? OriginalDestination(Socket socket)
    {
        Span<byte> buf = stackalloc byte[28];
        try
        {
            if (socket.AddressFamily == AddressFamily.InterNetwork)
            {
                int len = socket.GetRawSocketOption(SolIp, SoOriginalDst, buf);
                if (len < 8)
                {
                    return null;
                }
                int port = BinaryPrimitives.ReadUInt16BigEndian(buf[2..]);
                return new IPEndPoint(new IPAddress(buf.Slice(4, 4)), port);
            }
            else
            {
                int len = socket.GetRawSocketOption(SolIpv6, SoOriginalDst, buf);
                if (len < 24)
                {
                    return null;
                }
                int port = BinaryPrimitives.ReadUInt16BigEndian(buf[2..]);
                var addr = new IPAddress(buf.Slice(8, 16));
                return new IPEndPoint(addr.IsIPv4MappedToIPv6 ? addr.MapToIPv4() : addr, port);
            }
        }
        catch (SocketException)
        {
            // ENOENT: no conntrack entry, i.e. not redirected.
            return null;
        }
    }

    /// <summary>Sets SO_MARK (needs CAP_NET_ADMIN).</summary>
    public static void SetMark(Socket socket, uint mark)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(v, mark);
        socket.SetRawSocketOption(SolSocket, SoMark, v);
    }

    /// <summary>
    /// SO_REUSEADDR alone. .NET's <c>SocketOptionName.ReuseAddress</c> sets SO_REUSEPORT as well on Linux, which lets
    /// a second process bind the same address and have the kernel split connections between the two (issue 13): a
    /// listener of the agent must be its own. SO_REUSEADDR keeps what it is for: a restarted agent rebinds at once
    /// while old connections of its previous run sit in TIME_WAIT.
    /// </summary>
    public static void SetReuseAddressOnly(Socket socket)
    {
        Span<byte> one = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(one, 1);
        socket.SetRawSocketOption(SolSocket, SoReuseAddr, one);
    }

    /// <summary>IP_TRANSPARENT: accept TPROXYed connections for foreign addresses, or bind a non-local source.</summary>
    public static void SetTransparent(Socket socket)
    {
        Span<byte> one = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(one, 1);
        if (socket.AddressFamily == AddressFamily.InterNetwork)
        {
            socket.SetRawSocketOption(SolIp, IpTransparent, one);
        }
        else
        {
            socket.SetRawSocketOption(SolIpv6, Ipv6Transparent, one);
        }
    }

    public static IPEndPoint Normalize(IPEndPoint ep) =>
        ep.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(ep.Address.MapToIPv4(), ep.Port) : ep;
}
