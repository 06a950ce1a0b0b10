using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Ambient.Ztunnel.Sockets;
using Ambient.Ztunnel.Telemetry;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// SOCKS5 (RFC 1928, no authentication, CONNECT only) on 15080: outbound for hosts without capture. The source
/// workload is found by the client's address; a domain name is looked up among the mesh's service hostnames first.
/// </summary>
internal sealed class Socks5(ProxyContext ctx, Outbound outbound)
{
    private const byte Version = 5;
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    public async Task HandleAsync(Socket client, ProxyScope scope)
    {
        var remote = SocketOptions.Normalize((IPEndPoint)client.RemoteEndPoint!);
        IPEndPoint? target;
        using (var timeout = new CancellationTokenSource(HandshakeTimeout))
        {
            try
            {
                target = await NegotiateAsync(client, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException or ObjectDisposedException)
            {
                target = null;
            }
        }
        if (target is null)
        {
            ctx.Metrics.Refused("socks5", "bad_handshake");
            Relay.Abort(client);
            return;
        }

        var record = new ConnectionRecord("outbound", remote);
        var upstream = await outbound.ConnectAsync(record, target, scope, CancellationToken.None).ConfigureAwait(false);
        byte reply = upstream is not null ? (byte)0 : record.ResponseFlags switch
        {
            "DENY" => (byte)2, // connection not allowed by ruleset
            "NR" => (byte)4,   // host unreachable (no route)
            "UH" => (byte)4,
            _ => (byte)5,      // connection refused
        };
        try
        {
            await SendReplyAsync(client, reply).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            reply = 1;
        }
        if (upstream is null || reply != 0)
        {
            upstream?.Socket?.Dispose();
            upstream?.Tunnel?.Stream.Reset(Mesh.Http2.Http2ErrorCode.Cancel);
            client.Dispose();
            return;
        }
        outbound.StartRelay(client, upstream, record);
    }

    private async Task<IPEndPoint?> NegotiateAsync(Socket client, CancellationToken ct)
    {
        var buf = new byte[262];
        await ReadExactlyAsync(client, buf.AsMemory(0, 2), ct).ConfigureAwait(false);
        if (buf[0] != Version)
        {
            return null;
        }
        int methods = buf[1];
        await ReadExactlyAsync(client, buf.AsMemory(0, methods), ct).ConfigureAwait(false);
        if (Array.IndexOf(buf, (byte)0, 0, methods) < 0)
        {
            await client.SendAsync(new byte[] { Version, 0xFF }, SocketFlags.None, ct).ConfigureAwait(false);
            return null;
        }
        await client.SendAsync(new byte[] { Version, 0 }, SocketFlags.None, ct).ConfigureAwait(false);

        await ReadExactlyAsync(client, buf.AsMemory(0, 4), ct).ConfigureAwait(false);
        if (buf[0] != Version)
        {
            return null;
        }
        if (buf[1] != 1)
        {
            await SendReplyAsync(client, 7).ConfigureAwait(false); // command not supported
            return null;
        }
        IPAddress? address;
        switch (buf[3])
        {
            case 1:
                await ReadExactlyAsync(client, buf.AsMemory(0, 6), ct).ConfigureAwait(false);
                address = new IPAddress(buf.AsSpan(0, 4));
                return new IPEndPoint(address, BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(4)));
            case 4:
                await ReadExactlyAsync(client, buf.AsMemory(0, 18), ct).ConfigureAwait(false);
                address = new IPAddress(buf.AsSpan(0, 16));
                return new IPEndPoint(address, BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(16)));
            case 3:
                await ReadExactlyAsync(client, buf.AsMemory(0, 1), ct).ConfigureAwait(false);
                int len = buf[0];
                await ReadExactlyAsync(client, buf.AsMemory(0, len + 2), ct).ConfigureAwait(false);
                string host = Encoding.ASCII.GetString(buf, 0, len);
                int port = BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(len));
                address = await ResolveAsync(host, ct).ConfigureAwait(false);
                if (address is null)
                {
                    ctx.Logger.LogInformation("SOCKS5: cannot resolve {Host}", host);
                    await SendReplyAsync(client, 4).ConfigureAwait(false);
                    return null;
                }
                return new IPEndPoint(address, port);
            default:
                await SendReplyAsync(client, 8).ConfigureAwait(false); // address type not supported
                return null;
        }
    }

    /// <summary>A mesh service hostname resolves to its VIP (so the connection is load balanced); else ordinary DNS.</summary>
    private async Task<IPAddress?> ResolveAsync(string host, CancellationToken ct)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return literal;
        }
        // DNS names are case-insensitive; mesh hostnames are stored lower-case, as Kubernetes writes them.
        if (ctx.State.Current.FindServiceByHostname(host.ToLowerInvariant()) is { Vips.IsDefaultOrEmpty: false } svc)
        {
            return svc.Vips[0].Address;
        }
        try
        {
            var addrs = await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false);
            return addrs.Length > 0 ? addrs[0] : null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private static async Task SendReplyAsync(Socket client, byte code)
    {
        // BND.ADDR/PORT are zero: clients don't use them for CONNECT.
        var reply = new byte[] { Version, code, 0, 1, 0, 0, 0, 0, 0, 0 };
        await client.SendAsync(reply, SocketFlags.None).ConfigureAwait(false);
    }

    private static async Task ReadExactlyAsync(Socket s, Memory<byte> buffer, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await s.ReceiveAsync(buffer[read..], SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException("client closed during the SOCKS5 handshake");
            }
            read += n;
        }
    }
}
