using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.BadInput;

/// <summary>What every bad-input test checks afterwards: the refusal is counted, and the agent still serves.</summary>
internal static partial class BadInputAssertions
{
    public static IPEndPoint Hbone(TwoNodeMesh mesh) => new(mesh.ServerIp, 15008);

    /// <summary><c>ambient_connections_refused_total{listener,reason}</c> on node-b's metrics endpoint.</summary>
    public static async Task<long> RefusedAsync(TwoNodeMesh mesh, string listener = "hbone", string reason = "tls_handshake")
    {
        var (status, body) = await TwoNodeMesh.GetAsync(mesh.NodeB.EndPoints["metrics"], "/metrics");
        Assert.Equal(200, status);
        var m = Regex.Match(body, $"^ambient_connections_refused_total\\{{listener=\"{listener}\",reason=\"{reason}\"\\}} (\\d+)$", RegexOptions.Multiline);
        return m.Success ? long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    public static async Task<long> GaugeAsync(TwoNodeMesh mesh, string name)
    {
        var (_, body) = await TwoNodeMesh.GetAsync(mesh.NodeB.EndPoints["metrics"], "/metrics");
        var m = Regex.Match(body, $"^{name} (\\d+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"{name} not in metrics");
        return long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Waits for the refusal counter to exceed <paramref name="before"/>.</summary>
    public static async Task RefusalCountedAsync(TwoNodeMesh mesh, long before, string reason = "tls_handshake")
    {
        var deadline = Environment.TickCount64 + 10_000;
        long now;
        while ((now = await RefusedAsync(mesh, reason: reason)) <= before)
        {
            Assert.True(Environment.TickCount64 < deadline, $"ambient_connections_refused_total{{reason=\"{reason}\"}} stayed at {now}");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// The agent under attack still works: a mesh tunnel from node-a (TwoNodeMesh's own client) echoes, and a brand-new
    /// mTLS connection straight to node-b's 15008 gets a tunnel (so new connections are accepted, not just pooled ones).
    /// </summary>
    public static async Task StillServesAsync(TwoNodeMesh mesh, MeshPki pki)
    {
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (socket)
        {
            Assert.Equal(0, reply);
            await socket.SendAsync("still-alive"u8.ToArray(), SocketFlags.None).WaitAsync(Socks5Client.Timeout);
            var buf = new byte[11];
            await Socks5Client.ReadExactlyAsync(socket, buf);
            Assert.Equal("still-alive"u8.ToArray(), buf);
        }

        await using var fresh = await RawHttp2Client.ConnectAsync(Hbone(mesh), pki.Root, pki.Issue(MeshPki.Id("prober")));
        await fresh.HandshakeAsync();
        await fresh.OpenConnectAsync(1, mesh.Echo.EndPoint);
        Assert.Equal(200, await ResponseStatusAsync(fresh, 1));
    }

    /// <summary>Reads frames until the response HEADERS (or a RST_STREAM, reported as -code) of <paramref name="streamId"/>.</summary>
    public static async Task<int> ResponseStatusAsync(RawHttp2Client client, int streamId)
    {
        while (await client.ReadFrameAsync() is { } frame)
        {
            if (frame.StreamId == streamId && frame.Type == RawFrame.Headers)
            {
                return client.Status(frame);
            }
            if (frame.StreamId == streamId && frame.Type == RawFrame.RstStream)
            {
                return -(int)frame.ErrorCode;
            }
            if (frame.Type == RawFrame.GoAway)
            {
                Assert.Fail($"GOAWAY {frame.ErrorCode} while waiting for stream {streamId}");
            }
        }
        Assert.Fail($"connection closed while waiting for stream {streamId}: {client.ClosedBy}");
        return 0;
    }
}
