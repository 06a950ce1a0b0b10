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
        Negotiated negotiated;
        using (var timeout = new CancellationTokenSource(HandshakeTimeout))
        {
            try
            {
                negotiated = await NegotiateAsync(client, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                negotiated = Negotiated.Fail("bad_handshake", $"handshake not completed within {HandshakeTimeout.TotalSeconds:0} s");
            }
            catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException)
            {
                negotiated = Negotiated.Fail("bad_handshake", ex.Message);
            }
        }
        if (negotiated.Target is not { } target)
        {
            ctx.Refusals.Refuse("socks5", negotiated.Reason!, $"SOCKS5 connection from {remote} refused: {negotiated.Detail}");
            if (negotiated.Reply is { } code)
            {
                await TrySendReplyAsync(client, code).ConfigureAwait(false);
            }
            Relay.Abort(client);
            return;
        }
        if (ctx.OwnEndpoints.IsAgentItself(target))
        {
            // Through SOCKS5 a client would otherwise reach the admin API (/quitquitquit, /config_dump) or loop.
            ctx.Refusals.Refuse("socks5", "loop", $"SOCKS5 connection from {remote} refused: destination {target} is the agent itself");
            await TrySendReplyAsync(client, 2).ConfigureAwait(false); // connection not allowed by ruleset
            client.Dispose();
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
        if (!await TrySendReplyAsync(client, reply).ConfigureAwait(false))
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

    /// <summary>The CONNECT target, or why the handshake failed (the metric's reason and the log's sentence).</summary>
    /// <param name="Reply">The SOCKS5 reply code for the client, sent after the refusal is counted (so a client that
    /// read the reply also sees the metric); null: the connection is just closed.</param>
    private readonly record struct Negotiated(IPEndPoint? Target, string? Reason, string? Detail, byte? Reply = null)
    {
        public static Negotiated Fail(string reason, string detail, byte? reply = null) => new(null, reason, detail, reply);
    }

    private async Task<Negotiated> NegotiateAsync(Socket client, CancellationToken ct)
    {
        var buf = new byte[262];
        await ReadExactlyAsync(client, buf.AsMemory(0, 2), ct).ConfigureAwait(false);
        if (buf[0] != Version)
        {
            return Negotiated.Fail("bad_handshake", $"not SOCKS5 (version byte {buf[0]})");
        }
        int methods = buf[1];
        await ReadExactlyAsync(client, buf.AsMemory(0, methods), ct).ConfigureAwait(false);
        if (Array.IndexOf(buf, (byte)0, 0, methods) < 0)
        {
            await client.SendAsync(new byte[] { Version, 0xFF }, SocketFlags.None, ct).ConfigureAwait(false);
            return Negotiated.Fail("bad_handshake", "the client offers no method without authentication");
        }
        await client.SendAsync(new byte[] { Version, 0 }, SocketFlags.None, ct).ConfigureAwait(false);

        await ReadExactlyAsync(client, buf.AsMemory(0, 4), ct).ConfigureAwait(false);
        if (buf[0] != Version)
        {
            return Negotiated.Fail("bad_handshake", $"not SOCKS5 (version byte {buf[0]} in the request)");
        }
        if (buf[1] != 1)
        {
            return Negotiated.Fail("bad_handshake", $"command {buf[1]} is not supported (only CONNECT)", reply: 7); // command not supported
        }
        IPAddress? address;
        switch (buf[3])
        {
            case 1:
                await ReadExactlyAsync(client, buf.AsMemory(0, 6), ct).ConfigureAwait(false);
                address = new IPAddress(buf.AsSpan(0, 4));
                return new Negotiated(new IPEndPoint(address, BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(4))), null, null);
            case 4:
                await ReadExactlyAsync(client, buf.AsMemory(0, 18), ct).ConfigureAwait(false);
                address = new IPAddress(buf.AsSpan(0, 16));
                return new Negotiated(new IPEndPoint(address, BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(16))), null, null);
            case 3:
                await ReadExactlyAsync(client, buf.AsMemory(0, 1), ct).ConfigureAwait(false);
                int len = buf[0];
                await ReadExactlyAsync(client, buf.AsMemory(0, len + 2), ct).ConfigureAwait(false);
                string host = Encoding.ASCII.GetString(buf, 0, len);
                int port = BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(len));
                var (resolved, error) = await ResolveAsync(host, ct).ConfigureAwait(false);
                if (resolved is null)
                {
                    return Negotiated.Fail("dns", $"cannot resolve {host}: {error}", reply: 4); // host unreachable
                }
                return new Negotiated(new IPEndPoint(resolved, port), null, null);
            default:
                return Negotiated.Fail("bad_handshake", $"address type {buf[3]} is not supported", reply: 8); // address type not supported
        }
    }

    /// <summary>A mesh service hostname resolves to its VIP (so the connection is load balanced); else ordinary DNS.</summary>
    private async Task<(IPAddress? Address, string? Error)> ResolveAsync(string host, CancellationToken ct)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return (literal, null);
        }
        // DNS names are case-insensitive; mesh hostnames are stored lower-case, as Kubernetes writes them.
        if (ctx.State.Current.FindServiceByHostname(host.ToLowerInvariant()) is { Vips.IsDefaultOrEmpty: false } svc)
        {
            return (svc.Vips[0].Address, null);
        }
        try
        {
            var addrs = await ctx.ResolveHost(host, ct).ConfigureAwait(false);
            return addrs.Length > 0 ? (addrs[0], null) : (null, "no address");
        }
        catch (SocketException ex)
        {
            return (null, ex.SocketErrorCode == SocketError.HostNotFound ? "no such host (not a mesh service hostname either)" : ex.Message);
        }
        catch (ArgumentException ex)
        {
            return (null, ex.Message); // not a valid host name
        }
    }

    private static async Task<bool> TrySendReplyAsync(Socket client, byte code)
    {
        try
        {
            await SendReplyAsync(client, code).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
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
