using System.Net.Sockets;
using Ambient.Mesh.Http2;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.BadInput;

/// <summary>
/// Issue 13, finding 4: a client with a valid mesh certificate that opens an HBONE connection and no stream must not
/// hold it (and its memory and fd) for ever. The timeout comes from the config (hboneIdleTimeout), short here.
/// </summary>
public sealed class IdleConnectionTests
{
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task An_mtls_http2_connection_that_opens_no_stream_is_closed_after_the_idle_timeout()
    {
        await using var mesh = await TwoNodeMesh.StartAsync((_, c) => c with { HboneIdleTimeout = Idle });
        using var pki = MeshPki.Open(mesh.StateDir);
        await using var idle = await RawHttp2Client.ConnectAsync(BadInputAssertions.Hbone(mesh), pki.Root, pki.Issue(MeshPki.Id("idler")));
        await idle.HandshakeAsync(); // TLS 1.3 mTLS, ALPN h2, preface and SETTINGS both ways: a real HBONE connection

        // Nothing more is sent. The agent says GOAWAY (graceful: no stream was processed) and closes.
        var goAway = await idle.ReadUntilGoAwayAsync();
        Assert.True(goAway is not null, $"no GOAWAY; the connection ended by: {idle.ClosedBy}");
        Assert.Equal(Http2ErrorCode.NoError, goAway.ErrorCode);
        Assert.True(await idle.ReadsToEndAsync());
        Assert.True(idle.ClosedBy is "eof" || idle.ClosedBy!.Contains("IOException", StringComparison.Ordinal), $"closed by {idle.ClosedBy}");

        Assert.True(await BadInputAssertions.GaugeAsync(mesh, "ambient_hbone_idle_closed_total") >= 1);
    }

    [Fact]
    public async Task A_connection_that_carries_a_stream_is_not_idle()
    {
        await using var mesh = await TwoNodeMesh.StartAsync((_, c) => c with { HboneIdleTimeout = Idle });
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        using (socket)
        {
            Assert.Equal(0, reply);
            // Quiet for three idle timeouts, but the tunnel (a stream) is open: the connection must stay.
            await Task.Delay(Idle * 3);
            await socket.SendAsync("still here"u8.ToArray(), SocketFlags.None).WaitAsync(Socks5Client.Timeout);
            var buf = new byte[10];
            await Socks5Client.ReadExactlyAsync(socket, buf);
            Assert.Equal("still here"u8.ToArray(), buf);
            Assert.Equal(0, await BadInputAssertions.GaugeAsync(mesh, "ambient_hbone_idle_closed_total"));
        }
    }
}
