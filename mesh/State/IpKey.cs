using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Ambient.Mesh.State;

/// <summary>
/// An IP address as a value key for the snapshot's dictionaries: hashing and comparing it allocates nothing,
/// and an IPv4-mapped IPv6 address (what a dual-stack socket reports for an IPv4 peer) equals its IPv4 form.
/// The IPv6 scope id is ignored: config addresses never carry one.
/// </summary>
internal readonly record struct IpKey(ulong High, ulong Low, bool V6)
{
    public static IpKey From(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        if (!address.TryWriteBytes(b, out int len))
        {
            return default;
        }
        if (len == 4)
        {
            return new IpKey(0, BinaryPrimitives.ReadUInt32BigEndian(b), false);
        }
        if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv4MappedToIPv6)
        {
            return new IpKey(0, BinaryPrimitives.ReadUInt32BigEndian(b[12..]), false);
        }
        return new IpKey(BinaryPrimitives.ReadUInt64BigEndian(b), BinaryPrimitives.ReadUInt64BigEndian(b[8..]), true);
    }
}
