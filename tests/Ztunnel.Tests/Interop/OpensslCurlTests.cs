using System.Buffers.Binary;
using System.Security.Cryptography;
using Ambient.Mesh.Http2;
using Ambient.Ztunnel.Tests.BadInput;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.Interop;

/// <summary>OpenSSL's s_client and curl (OpenSSL + nghttp2) against node-b's 15008: TLS and HTTP/2 stacks we did not write.</summary>
public sealed class OpensslCurlTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [RequiresToolsFact("openssl")]
    public async Task S_client_without_a_client_certificate_is_refused_before_any_http2()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        long before = await BadInputAssertions.RefusedAsync(mesh);

        // -ign_eof: keep reading after our input ends, so s_client reports how the server ended the connection.
        await using var client = await ExternalProcess.RunAsync("openssl",
            ["s_client", "-connect", $"{mesh.ServerIp}:15008", "-tls1_3", "-alpn", "h2", "-CAfile", pki.CaFile, "-verify_return_error", "-quiet", "-ign_eof"],
            [.. RawHttp2Client.Preface, .. RawHttp2Client.Frame(RawFrame.Settings, 0, 0, [])], Timeout);

        // -quiet prints only what the server sent as application data: there must be none (no SETTINGS, nothing).
        Assert.True(client.StdoutBytes.Length == 0, $"server sent {client.StdoutBytes.Length} bytes of application data; stderr: {client.Stderr}");
        // s_client finished its side of the TLS 1.3 handshake (the server's chain verified), then the agent judged the
        // missing certificate and closed. It closes without a TLS alert (s_client reports "unexpected eof"; RFC 8446
        // 6.2 only says SHOULD send one), so accept either form of being cut off.
        Assert.Contains("verify return:1", client.Stderr, StringComparison.Ordinal);
        Assert.True(client.ExitCode != 0, $"s_client exited 0; stderr: {client.Stderr}");
        Assert.Matches("alert|unexpected eof", client.Stderr);
        await BadInputAssertions.RefusalCountedAsync(mesh, before);
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    [RequiresToolsFact("openssl")]
    public async Task S_client_with_a_mesh_certificate_verifies_the_agent_and_garbage_after_the_handshake_gets_goaway()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        var (cert, key) = pki.Write("openssl", pki.Issue(MeshPki.Id("openssl")));
        byte[] garbage = [0x47, .. RandomNumberGenerator.GetBytes(200)];

        await using var client = await ExternalProcess.RunAsync("openssl",
            ["s_client", "-connect", $"{mesh.ServerIp}:15008", "-tls1_3", "-alpn", "h2", "-CAfile", pki.CaFile, "-verify_return_error",
             "-cert", cert, "-key", key, "-quiet", "-ign_eof"],
            garbage, Timeout);

        // The chain verified against the mesh CA (s_client would have aborted otherwise, -verify_return_error).
        Assert.Contains("verify return:1", client.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("verify error", client.Stderr, StringComparison.Ordinal);
        // What the agent sent: its SETTINGS, then GOAWAY PROTOCOL_ERROR for the invalid preface (RFC 9113 section 3.4).
        var frames = ParseFrames(client.StdoutBytes);
        Assert.True(frames.Count > 0, $"no HTTP/2 frames from the agent; stderr: {client.Stderr}");
        Assert.Equal(RawFrame.Settings, frames[0].Type);
        var goAway = frames.Single(f => f.Type == RawFrame.GoAway);
        Assert.Equal(Http2ErrorCode.ProtocolError, goAway.ErrorCode);
        Assert.Equal(0, mesh.Echo.Accepted);
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    /// <summary>
    /// curl speaks real HTTP/2 (nghttp2) with a mesh certificate but asks for GET /: the agent answers 400 over h2.
    /// -k because curl can only verify a DNS/IP SAN, and the agent's certificate carries a SPIFFE URI SAN alone;
    /// the chain itself is verified in the s_client and Node tests.
    /// </summary>
    [RequiresToolsFact("curl")]
    public async Task Curl_get_over_h2_with_a_mesh_certificate_is_answered_400()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        var (cert, key) = pki.Write("curl", pki.Issue(MeshPki.Id("curl")));

        await using var curl = await ExternalProcess.RunAsync("curl",
            ["-sS", "-k", "--http2", "--tlsv1.3", "--cert", cert, "--key", key, "-o", "/dev/null", "-w", "%{http_code} %{http_version}", "--max-time", "20", $"https://{mesh.ServerIp}:15008/"],
            null, Timeout);

        Assert.True(curl.ExitCode == 0, $"curl exit {curl.ExitCode}: {curl.Stderr}");
        Assert.Equal("400 2", curl.Stdout.Trim());
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogB.ToString().Contains("spiffe://cluster.local/ns/default/sa/curl", StringComparison.Ordinal), "request logged with curl's identity");
    }

    [RequiresToolsFact("curl")]
    public async Task Curl_without_a_client_certificate_is_refused()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        long before = await BadInputAssertions.RefusedAsync(mesh);

        await using var curl = await ExternalProcess.RunAsync("curl",
            ["-sS", "-k", "--http2", "--tlsv1.3", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", $"https://{mesh.ServerIp}:15008/"],
            null, Timeout);

        // curl fails at the TLS layer (no HTTP status at all), not with an HTTP error.
        Assert.True(curl.ExitCode != 0, $"curl succeeded without a client certificate: {curl.Stdout}");
        Assert.Equal("000", curl.Stdout.Trim());
        await BadInputAssertions.RefusalCountedAsync(mesh, before);
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    private static List<RawFrame> ParseFrames(byte[] bytes)
    {
        var frames = new List<RawFrame>();
        int at = 0;
        while (bytes.Length - at >= 9)
        {
            int length = (bytes[at] << 16) | (bytes[at + 1] << 8) | bytes[at + 2];
            if (bytes.Length - at - 9 < length)
            {
                break;
            }
            frames.Add(new RawFrame(bytes[at + 3], bytes[at + 4], BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(at + 5)) & 0x7FFFFFFF, bytes.AsSpan(at + 9, length).ToArray()));
            at += 9 + length;
        }
        return frames;
    }
}
