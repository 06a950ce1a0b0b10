using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Tests.Identity;
using Ambient.Mesh.Tls;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Mesh.Tests.Tls;

public sealed class MeshTlsTests : IDisposable
{
    private static readonly TimeSpan Timeout = TlsPair.Timeout;
    private static readonly SpiffeId ClientId = new("cluster.local", "ns-a", "client");
    private static readonly SpiffeId ServerId = new("cluster.local", "ns-b", "server");

    private readonly TempDir _dir = new();
    private readonly CertificateAuthority _ca;

    public MeshTlsTests()
    {
        _ca = CertificateAuthority.LoadOrCreate(null, null, Path.Combine(_dir.Path, "mesh"), "cluster.local");
    }

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Mutual_tls_succeeds_with_tls13_and_h2_and_each_side_sees_the_other_id()
    {
        // Through the manager: the certificates SslStream uses carry ephemeral keys attached with CopyWithPrivateKey.
        await using var manager = new CertificateManager(_ca, TimeSpan.FromHours(1), TimeProvider.System, NullLogger.Instance);
        WorkloadCertificate client = await manager.GetAsync(ClientId, CancellationToken.None).AsTask().WaitAsync(Timeout);
        WorkloadCertificate server = await manager.GetAsync(ServerId, CancellationToken.None).AsTask().WaitAsync(Timeout);

        await using TlsPair pair = await TlsPair.HandshakeAsync(
            MeshTls.ClientOptions(client, ["spiffe://cluster.local/ns-x/sa/other", ServerId.ToString()], _ca.TrustBundle),
            MeshTls.ServerOptions(server, _ca.TrustBundle, "cluster.local"));

        Assert.Null(pair.ClientError);
        Assert.Null(pair.ServerError);
        Assert.Equal(SslProtocols.Tls13, pair.Client.SslProtocol);
        Assert.Equal(SslProtocols.Tls13, pair.Server.SslProtocol);
        Assert.Equal(SslApplicationProtocol.Http2, pair.Client.NegotiatedApplicationProtocol);
        Assert.Equal(SslApplicationProtocol.Http2, pair.Server.NegotiatedApplicationProtocol);
        Assert.Equal(ServerId, MeshTls.PeerId(pair.Client));
        Assert.Equal(ClientId, MeshTls.PeerId(pair.Server));
        Assert.True(pair.Client.IsMutuallyAuthenticated);

        await pair.Client.WriteAsync("ping"u8.ToArray()).AsTask().WaitAsync(Timeout);
        var buffer = new byte[4];
        await pair.Server.ReadExactlyAsync(buffer).AsTask().WaitAsync(Timeout);
        Assert.Equal("ping"u8.ToArray(), buffer);
    }

    [Fact]
    public async Task Client_rejects_a_server_with_an_unexpected_identity()
    {
        await using TlsPair pair = await TlsPair.HandshakeAsync(
            MeshTls.ClientOptions(Workload(_ca, ClientId), ["spiffe://cluster.local/ns/b/sa/someone-else"], _ca.TrustBundle),
            MeshTls.ServerOptions(Workload(_ca, ServerId), _ca.TrustBundle, "cluster.local"));

        Assert.IsType<AuthenticationException>(pair.ClientError);
        Assert.Contains("is not the expected spiffe://cluster.local/ns/b/sa/someone-else", MeshTls.RejectionReason(pair.Client), StringComparison.Ordinal);
        await pair.AssertServerIsCutOffAsync();
    }

    [Fact]
    public async Task Client_rejects_a_server_from_another_CA()
    {
        using CertificateAuthority other = CertificateAuthority.LoadOrCreate(null, null, Path.Combine(_dir.Path, "other"), "cluster.local");
        await using TlsPair pair = await TlsPair.HandshakeAsync(
            MeshTls.ClientOptions(Workload(_ca, ClientId), [ServerId.ToString()], _ca.TrustBundle),
            MeshTls.ServerOptions(Workload(other, ServerId), _ca.TrustBundle, "cluster.local"));

        Assert.IsType<AuthenticationException>(pair.ClientError);
        Assert.Contains("does not chain to the trust bundle", MeshTls.RejectionReason(pair.Client), StringComparison.Ordinal);
        await pair.AssertServerIsCutOffAsync();
    }

    [Fact]
    public async Task Server_rejects_a_client_certificate_from_another_CA()
    {
        using CertificateAuthority other = CertificateAuthority.LoadOrCreate(null, null, Path.Combine(_dir.Path, "other"), "cluster.local");
        await using TlsPair pair = await TlsPair.HandshakeAsync(
            MeshTls.ClientOptions(Workload(other, ClientId), [ServerId.ToString()], _ca.TrustBundle),
            MeshTls.ServerOptions(Workload(_ca, ServerId), _ca.TrustBundle, "cluster.local"));

        Assert.IsType<AuthenticationException>(pair.ServerError);
        Assert.Contains("does not chain to the trust bundle", MeshTls.RejectionReason(pair.Server), StringComparison.Ordinal);
        await pair.AssertClientIsCutOffAsync();
    }

    [Fact]
    public async Task Server_rejects_a_client_without_a_certificate()
    {
        SslClientAuthenticationOptions options = MeshTls.ClientOptions(Workload(_ca, ClientId), [ServerId.ToString()], _ca.TrustBundle);
        options.ClientCertificateContext = null;
        await using TlsPair pair = await TlsPair.HandshakeAsync(options, MeshTls.ServerOptions(Workload(_ca, ServerId), _ca.TrustBundle, "cluster.local"));

        Assert.IsType<AuthenticationException>(pair.ServerError);
        Assert.Equal("peer presented no certificate", MeshTls.RejectionReason(pair.Server));
        await pair.AssertClientIsCutOffAsync();
    }

    [Fact]
    public async Task Server_rejects_an_expired_client_certificate()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        WorkloadCertificate expired = WorkloadCertificate.Create(ClientId, _ca.Issue(ClientId, now.AddHours(-2), now.AddHours(-1)));
        await using TlsPair pair = await TlsPair.HandshakeAsync(
            MeshTls.ClientOptions(expired, [ServerId.ToString()], _ca.TrustBundle),
            MeshTls.ServerOptions(Workload(_ca, ServerId), _ca.TrustBundle, "cluster.local"));

        Assert.IsType<AuthenticationException>(pair.ServerError);
        Assert.Contains("expired", MeshTls.RejectionReason(pair.Server), StringComparison.Ordinal);
        await pair.AssertClientIsCutOffAsync();
    }

    [Fact]
    public async Task Server_rejects_a_client_from_another_trust_domain()
    {
        var foreign = new SpiffeId("other.example", "ns-a", "client");
        await using TlsPair pair = await TlsPair.HandshakeAsync(
            MeshTls.ClientOptions(Workload(_ca, foreign), [ServerId.ToString()], _ca.TrustBundle),
            MeshTls.ServerOptions(Workload(_ca, ServerId), _ca.TrustBundle, "cluster.local"));

        Assert.IsType<AuthenticationException>(pair.ServerError);
        Assert.Equal("peer spiffe://other.example/ns/ns-a/sa/client is not in trust domain cluster.local", MeshTls.RejectionReason(pair.Server));
        await pair.AssertClientIsCutOffAsync();
    }

    [Fact]
    public async Task Intermediates_travel_in_the_handshake_and_peers_trust_only_the_root()
    {
        using var files = new TempDir();
        await OpenSsl.CreateIntermediateAsync(files);
        await File.WriteAllTextAsync(files.File("chain.pem"),
            await File.ReadAllTextAsync(files.File("int-cert.pem")) + await File.ReadAllTextAsync(files.File("root-cert.pem")));
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(files.File("chain.pem"), files.File("int-key.pem"), files.Path, "example.org");
        var client = new SpiffeId("example.org", "a", "client");
        var server = new SpiffeId("example.org", "b", "server");
        X509Certificate2Collection rootOnly = [ca.Root];

        await using TlsPair pair = await TlsPair.HandshakeAsync(
            MeshTls.ClientOptions(Workload(ca, client), [server.ToString()], rootOnly),
            MeshTls.ServerOptions(Workload(ca, server), rootOnly, "example.org"));

        Assert.Null(pair.ClientError);
        Assert.Null(pair.ServerError);
        Assert.Equal(server, MeshTls.PeerId(pair.Client));
        Assert.Equal(client, MeshTls.PeerId(pair.Server));
    }

    [Fact]
    public void TryValidatePeer_explains_each_refusal()
    {
        X509Certificate2 good = _ca.Issue(ClientId, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1)).Leaf;
        Assert.True(MeshTls.TryValidatePeer(good, _ca.TrustBundle, "cluster.local", out SpiffeId? peer, out string? error));
        Assert.Equal(ClientId, peer);
        Assert.Null(error);
        // Cached the second time; same answer.
        Assert.True(MeshTls.TryValidatePeer(good, _ca.TrustBundle, null, out peer, out _));
        Assert.Equal(ClientId, peer);

        Assert.False(MeshTls.TryValidatePeer(null, _ca.TrustBundle, null, out _, out error));
        Assert.Equal("peer presented no certificate", error);
        Assert.False(MeshTls.TryValidatePeer(good, _ca.TrustBundle, "example.org", out _, out error));
        Assert.Contains("not in trust domain example.org", error, StringComparison.Ordinal);
        Assert.False(MeshTls.TryValidatePeer(good, [], null, out _, out error));
        Assert.Equal("the trust bundle is empty", error);
        // A CA certificate is not a workload certificate, even when it is the trust anchor itself.
        Assert.False(MeshTls.TryValidatePeer(_ca.Root, _ca.TrustBundle, null, out _, out error));
        Assert.Contains("no subjectAltName", error, StringComparison.Ordinal);

        X509Certificate2 notYet = _ca.Issue(ClientId, DateTimeOffset.UtcNow.AddHours(1), DateTimeOffset.UtcNow.AddHours(2)).Leaf;
        Assert.False(MeshTls.TryValidatePeer(notYet, _ca.TrustBundle, null, out _, out error));
        Assert.Contains("not valid before", error, StringComparison.Ordinal);
    }

    internal static WorkloadCertificate Workload(CertificateAuthority ca, SpiffeId id) =>
        WorkloadCertificate.Create(id, ca.Issue(id, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1)));
}
