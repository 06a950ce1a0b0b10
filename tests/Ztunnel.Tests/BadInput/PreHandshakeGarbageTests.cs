using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.BadInput;

/// <summary>Bytes that are not a TLS ClientHello, sent to node-b's 15008 before any handshake.</summary>
public sealed class PreHandshakeGarbageTests
{
    public static TheoryData<string> Inputs => ["random bytes", "plaintext HTTP/1.1 request", "plaintext HTTP/2 (h2c prior knowledge)"];

    [Theory]
    [MemberData(nameof(Inputs))]
    public async Task Non_tls_bytes_are_refused_and_the_agent_keeps_serving(string input)
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        long before = await BadInputAssertions.RefusedAsync(mesh);
        byte[] bytes = input switch
        {
            // The first byte is pinned to something no TLS record starts with, so the bytes can never be a handshake.
            "random bytes" => [0x47, .. RandomNumberGenerator.GetBytes(4096)],
            "plaintext HTTP/1.1 request" => Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: {mesh.Echo.EndPoint}\r\nConnection: close\r\n\r\n"),
            _ => [.. RawHttp2Client.Preface, .. RawHttp2Client.Frame(0x4, 0, 0, [])],
        };

        var answer = await SendAndReadUntilClosedAsync(BadInputAssertions.Hbone(mesh), bytes);

        // Nothing the client could mistake for a response: at most a TLS alert record (content type 21).
        Assert.False(answer.Length > 0 && answer[0] != 21, $"agent answered non-TLS input with: {Convert.ToHexString(answer.AsSpan(0, Math.Min(32, answer.Length)))}");
        Assert.DoesNotContain("HTTP/", Encoding.ASCII.GetString(answer), StringComparison.Ordinal);
        await BadInputAssertions.RefusalCountedAsync(mesh, before);
        Assert.Equal(0, mesh.Echo.Accepted);
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    /// <summary>A client that connects and says nothing is dropped by the handshake timeout, not kept forever.</summary>
    [Fact]
    public async Task Many_silent_or_garbage_connections_at_once_do_not_stop_valid_clients()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        var silent = new List<Socket>();
        try
        {
            for (int i = 0; i < 50; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await s.ConnectAsync(BadInputAssertions.Hbone(mesh)).WaitAsync(RawHttp2Client.Timeout);
                if (i % 2 == 0)
                {
                    await s.SendAsync(RandomNumberGenerator.GetBytes(3), SocketFlags.None);
                }
                silent.Add(s);
            }

            // Half-open and stalled handshakes are pending on the agent right now; real clients must not queue behind them.
            await BadInputAssertions.StillServesAsync(mesh, pki);
        }
        finally
        {
            foreach (var s in silent)
            {
                s.Dispose();
            }
        }
    }

    /// <summary>
    /// Slowloris: a client that opens TCP and never starts TLS, and one that completes mTLS and never sends the HTTP/2
    /// preface, must both be disconnected by the agent (its handshake timeouts), not held open forever.
    /// </summary>
    [Fact]
    public async Task Clients_that_stall_the_tls_or_http2_handshake_are_disconnected()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        long before = await BadInputAssertions.RefusedAsync(mesh);
        using var silentTcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silentTcp.ConnectAsync(BadInputAssertions.Hbone(mesh)).WaitAsync(RawHttp2Client.Timeout);
        await using var silentTls = await RawHttp2Client.ConnectAsync(BadInputAssertions.Hbone(mesh), pki.Root, pki.Issue(MeshPki.Id("staller")));

        // Nothing sent on either. The agent's limits are 10 s each; 40 s is only our backstop.
        var tcpClosed = ReadUntilClosedAsync(silentTcp);
        var tlsClosed = Task.Run(async () =>
        {
            while (await silentTls.ReadFrameAsync() is not null)
            {
                // Its SETTINGS may arrive first; the close is what we wait for.
            }
        });
        await Task.WhenAll(tcpClosed, tlsClosed).WaitAsync(TimeSpan.FromSeconds(40));

        await BadInputAssertions.RefusalCountedAsync(mesh, before);
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    private static async Task ReadUntilClosedAsync(Socket s)
    {
        var buf = new byte[1024];
        try
        {
            while (await s.ReceiveAsync(buf.AsMemory(), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(40)) > 0)
            {
            }
        }
        catch (SocketException)
        {
        }
    }

    private static async Task<byte[]> SendAndReadUntilClosedAsync(System.Net.IPEndPoint endpoint, byte[] bytes)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(endpoint).WaitAsync(RawHttp2Client.Timeout);
        using var received = new MemoryStream();
        try
        {
            await s.SendAsync(bytes, SocketFlags.None).WaitAsync(RawHttp2Client.Timeout);
            var buf = new byte[4096];
            int n;
            // Bounded by the agent's handshake timeout (10 s) at worst; our own timeout is the backstop.
            while ((n = await s.ReceiveAsync(buf.AsMemory(), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(30))) > 0)
            {
                received.Write(buf, 0, n);
            }
        }
        catch (SocketException)
        {
            // A reset is as good a refusal as a FIN.
        }
        return received.ToArray();
    }
}
