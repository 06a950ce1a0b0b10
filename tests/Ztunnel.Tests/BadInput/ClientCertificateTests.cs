using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.BadInput;

/// <summary>TLS clients the agent must not let past the handshake: HBONE is mutual TLS with mesh identities only.</summary>
public sealed class ClientCertificateTests
{
    public static TheoryData<string> Clients =>
    [
        "no certificate",
        "certificate from another CA",
        "expired certificate",
        "not yet valid certificate",
        "the CA certificate itself",
        "ALPN http/1.1 instead of h2",
    ];

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Client_is_refused_before_any_http2_and_the_agent_keeps_serving(string client)
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        using var foreign = MeshPki.Foreign();
        var id = MeshPki.Id("intruder");
        var now = DateTimeOffset.UtcNow;
        var (certificate, alpn) = client switch
        {
            "no certificate" => (null, "h2"),
            "certificate from another CA" => (foreign.Issue(id), "h2"),
            "expired certificate" => (pki.Issue(id, now.AddHours(-2), now.AddHours(-1)), "h2"),
            "not yet valid certificate" => (pki.Issue(id, now.AddHours(1), now.AddHours(2)), "h2"),
            "the CA certificate itself" => (CaWithKey(mesh.StateDir), "h2"),
            _ => (pki.Issue(id), "http/1.1"),
        };
        long before = await BadInputAssertions.RefusedAsync(mesh);

        // In TLS 1.3 the client's handshake completes before the server has judged the client certificate, so the
        // refusal may surface here or on the first read; either way no HTTP/2 frame may ever arrive.
        RawFrame? firstFrame = null;
        string outcome;
        try
        {
            await using var raw = await RawHttp2Client.ConnectAsync(BadInputAssertions.Hbone(mesh), pki.Root, certificate, alpn);
            try
            {
                await raw.WriteRawAsync([.. RawHttp2Client.Preface, .. RawHttp2Client.Frame(RawFrame.Settings, 0, 0, [])]);
            }
            catch (IOException)
            {
                // The server may already have closed: the read below reports how.
            }
            firstFrame = await raw.ReadFrameAsync();
            outcome = raw.ClosedBy ?? "frame";
        }
        catch (Exception ex) when (ex is System.Security.Authentication.AuthenticationException or IOException)
        {
            outcome = "handshake failed: " + ex.Message;
        }

        Assert.True(firstFrame is null, $"{client}: the agent spoke HTTP/2 ({firstFrame}) to a client it must refuse");
        Assert.NotNull(outcome);
        await BadInputAssertions.RefusalCountedAsync(mesh, before);
        Assert.Equal(0, mesh.Echo.Accepted);
        await BadInputAssertions.StillServesAsync(mesh, pki);
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 CaWithKey(string stateDir)
    {
        var cert = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(
            Path.Combine(stateDir, "ca-cert.pem"), Path.Combine(stateDir, "ca-key.pem"));
        return cert;
    }
}
