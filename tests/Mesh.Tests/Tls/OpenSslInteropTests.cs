using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Security.Authentication;
using System.Text;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Tests.Identity;
using Ambient.Mesh.Tls;

namespace Ambient.Mesh.Tests.Tls;

/// <summary>openssl s_client, an independent TLS stack, against our HBONE server settings.</summary>
public sealed class OpenSslInteropTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly SpiffeId ClientId = new("cluster.local", "ns-a", "client");
    private static readonly SpiffeId ServerId = new("cluster.local", "ns-b", "server");

    private readonly TempDir _dir = new();
    private readonly CertificateAuthority _ca;

    public OpenSslInteropTests()
    {
        _ca = CertificateAuthority.LoadOrCreate(null, null, Path.Combine(_dir.Path, "state"), "cluster.local");
    }

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Openssl_client_with_our_client_certificate_is_accepted_and_verifies_our_server()
    {
        await WriteClientFilesAsync();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        Task<Served> server = ServeOnceAsync(listener, reply: "world\n");

        // -verify_return_error: s_client aborts unless our server certificate verifies against root.pem.
        (int exitCode, string output) = await OpenSsl.RunAsync(_dir.Path, "hello\n",
            "s_client", "-connect", $"127.0.0.1:{port}", "-tls1_3", "-alpn", "h2", "-cert", "client.pem", "-key", "client-key.pem",
            "-CAfile", "root.pem", "-verify_return_error", "-quiet");

        var result = await server.WaitAsync(Timeout);
        Assert.True(result.Authenticated, output);
        Assert.Equal(ClientId, result.Peer);
        Assert.Equal(SslApplicationProtocol.Http2, result.Alpn);
        Assert.Equal(SslProtocols.Tls13, result.Protocol);
        Assert.Equal("hello\n", result.Received);
        Assert.Contains("world", output, StringComparison.Ordinal);
        Assert.Equal(0, exitCode);
    }

    [Fact]
    public async Task Openssl_client_without_a_certificate_is_refused()
    {
        await WriteClientFilesAsync();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = ServeOnceAsync(listener, reply: "world\n");

        (_, string output) = await OpenSsl.RunAsync(_dir.Path, "hello\n",
            "s_client", "-connect", $"127.0.0.1:{port}", "-tls1_3", "-alpn", "h2", "-CAfile", "root.pem", "-verify_return_error", "-quiet");

        var result = await server.WaitAsync(Timeout);
        Assert.False(result.Authenticated, output);
        Assert.Equal("peer presented no certificate", result.Received); // the refusal reason, when refused
        Assert.DoesNotContain("world", output, StringComparison.Ordinal);
    }

    private async Task WriteClientFilesAsync()
    {
        IssuedCertificate client = _ca.Issue(ClientId, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
        await File.WriteAllTextAsync(_dir.File("root.pem"), _ca.Root.ExportCertificatePem());
        await File.WriteAllTextAsync(_dir.File("client.pem"), client.Leaf.ExportCertificatePem());
        await File.WriteAllTextAsync(_dir.File("client-key.pem"), client.Leaf.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
    }

    private async Task<Served> ServeOnceAsync(TcpListener listener, string reply)
    {
        using TcpClient socket = await listener.AcceptTcpClientAsync().WaitAsync(Timeout);
        await using var tls = new SslStream(socket.GetStream());
        WorkloadCertificate server = MeshTlsTests.Workload(_ca, ServerId);
        try
        {
            await tls.AuthenticateAsServerAsync(MeshTls.ServerOptions(server, _ca.TrustBundle, "cluster.local")).WaitAsync(Timeout);
        }
        catch (AuthenticationException)
        {
            return new Served(false, MeshTls.RejectionReason(tls) ?? string.Empty, null, default, default);
        }

        var received = new StringBuilder();
        var buffer = new byte[64];
        while (!received.ToString().EndsWith('\n'))
        {
            int read = await tls.ReadAsync(buffer).AsTask().WaitAsync(Timeout);
            if (read == 0)
            {
                break;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        await tls.WriteAsync(Encoding.ASCII.GetBytes(reply)).AsTask().WaitAsync(Timeout);
        await tls.ShutdownAsync().WaitAsync(Timeout);
        return new Served(true, received.ToString(), MeshTls.PeerId(tls), tls.NegotiatedApplicationProtocol, tls.SslProtocol);
    }

    private sealed record Served(bool Authenticated, string Received, SpiffeId? Peer, SslApplicationProtocol Alpn, SslProtocols Protocol);
}
