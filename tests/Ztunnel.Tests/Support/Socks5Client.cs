using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Ambient.Ztunnel.Tests.Support;

/// <summary>A minimal RFC 1928 client: what curl --socks5 or an app's SOCKS library does.</summary>
internal static class Socks5Client
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>Connects from <paramref name="source"/> through the proxy; returns the socket and the SOCKS reply code.</summary>
    public static async Task<(Socket Socket, int Reply)> ConnectAsync(IPEndPoint proxy, IPAddress source, IPEndPoint target)
    {
        TestAddresses.Loopback(target); // the agent dials it for us
        var s = await GreetAsync(proxy, source);
        var buf = new byte[10];
        var req = new byte[10];
        req[0] = 5;
        req[1] = 1;
        req[3] = 1;
        target.Address.MapToIPv4().TryWriteBytes(req.AsSpan(4), out _);
        BinaryPrimitives.WriteUInt16BigEndian(req.AsSpan(8), (ushort)target.Port);
        await s.SendAsync(req, SocketFlags.None).WaitAsync(Timeout);
        await ReadExactlyAsync(s, buf.AsMemory(0, 10));
        return (s, buf[1]);
    }

    /// <summary>
    /// CONNECT by name (address type 3), as <c>curl --socks5-hostname</c> does: the proxy resolves <paramref name="host"/>.
    /// </summary>
    public static async Task<(Socket Socket, int Reply)> ConnectAsync(IPEndPoint proxy, IPAddress source, string host, int port)
    {
        var s = await GreetAsync(proxy, source);
        var buf = new byte[10];
        byte[] name = System.Text.Encoding.ASCII.GetBytes(host);
        var req = new byte[7 + name.Length];
        req[0] = 5;
        req[1] = 1;
        req[3] = 3;
        req[4] = (byte)name.Length;
        name.CopyTo(req, 5);
        BinaryPrimitives.WriteUInt16BigEndian(req.AsSpan(5 + name.Length), (ushort)port);
        await s.SendAsync(req, SocketFlags.None).WaitAsync(Timeout);
        await ReadExactlyAsync(s, buf.AsMemory(0, 10));
        return (s, buf[1]);
    }

    /// <summary>Connects from <paramref name="source"/> and agrees on "no authentication".</summary>
    private static async Task<Socket> GreetAsync(IPEndPoint proxy, IPAddress source)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        s.Bind(new IPEndPoint(source, 0));
        await s.ConnectAsync(TestAddresses.Loopback(proxy)).WaitAsync(Timeout);
        await s.SendAsync(new byte[] { 5, 1, 0 }, SocketFlags.None).WaitAsync(Timeout);
        var method = new byte[2];
        await ReadExactlyAsync(s, method);
        Assert.Equal(new byte[] { 5, 0 }, method);
        return s;
    }

    public static async Task ReadExactlyAsync(Socket s, Memory<byte> buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await s.ReceiveAsync(buffer[read..], SocketFlags.None).AsTask().WaitAsync(Timeout);
            if (n == 0)
            {
                throw new IOException($"connection closed after {read} of {buffer.Length} bytes");
            }
            read += n;
        }
    }

    /// <summary>Reads as many bytes as <paramref name="expected"/> has and fails unless they are those bytes: an echo, checked.</summary>
    public static async Task ExpectEchoAsync(Socket s, byte[] expected)
    {
        var got = new byte[expected.Length];
        await ReadExactlyAsync(s, got);
        Xunit.Assert.True(expected.AsSpan().SequenceEqual(got),
            $"echo differs: sent '{System.Text.Encoding.ASCII.GetString(expected)}', got '{System.Text.Encoding.ASCII.GetString(got)}'");
    }

    /// <summary>Reads until EOF; throws on reset.</summary>
    public static async Task<byte[]> ReadToEndAsync(Socket s)
    {
        using var ms = new MemoryStream();
        var buf = new byte[64 * 1024];
        while (true)
        {
            int n = await s.ReceiveAsync(buf.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Timeout);
            if (n == 0)
            {
                return ms.ToArray();
            }
            ms.Write(buf, 0, n);
        }
    }
}
