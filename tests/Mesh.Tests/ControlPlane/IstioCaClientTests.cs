using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Tests.ControlPlane.Support;
using Ambient.Mesh.Tests.Identity;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Mesh.Tests.ControlPlane;

/// <summary>The Istio CA client against an in-process CA (<see cref="FakeIstiod"/>) over gRPC.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "xunit disposes it through IAsyncLifetime.DisposeAsync")]
public sealed class IstioCaClientTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly SpiffeId Echo = new("cluster.local", "shop", "echo");
    private const string Own = "spiffe://cluster.local/ns/istio-system/sa/ztunnel";

    private FakeIstiod _istiod = null!;
    private string _dir = null!;
    private IstioCaClient _client = null!;

    public async Task InitializeAsync()
    {
        _istiod = await FakeIstiod.StartAsync();
        _dir = Directory.CreateTempSubdirectory("ambient-ca-").FullName;
        string token = Path.Combine(_dir, "token");
        await File.WriteAllTextAsync(token, "ca-token");
        _client = new IstioCaClient(new ControlPlaneConnection(_istiod.Url, null, token, "Kubernetes"), Own);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _istiod.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Issues_a_p256_leaf_with_the_spiffe_san_that_chains_to_the_returned_root()
    {
        Assert.Empty(_client.TrustBundle);
        IssuedCertificate issued = await _client.IssueAsync(Echo, TimeSpan.FromHours(24), CancellationToken.None).AsTask().WaitAsync(Timeout);

        Assert.True(issued.Leaf.HasPrivateKey);
        using (ECDsa? key = issued.Leaf.GetECDsaPrivateKey())
        {
            Assert.Equal(256, key!.KeySize);
        }
        Assert.True(SpiffeSan.TryRead(issued.Leaf, out SpiffeId san, out _));
        Assert.Equal(Echo, san);
        Assert.Empty(issued.Intermediates);
        Assert.Equal(_istiod.Root.Thumbprint, Assert.Single(_client.TrustBundle).Thumbprint);
        using (var chain = new X509Chain())
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(_client.TrustBundle);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            Assert.True(chain.Build(issued.Leaf));
        }

        // What went over the wire: a PKCS#10 request with an empty subject, the SAN critical, the lifetime asked for,
        // the identity impersonated (the agent is not echo), the bearer token and the cluster id.
        var request = Assert.Single(_istiod.CertificateRequests);
        CertificateRequest csr = CertificateRequest.LoadSigningRequestPem(request.Csr, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        Assert.Empty(csr.SubjectName.RawData.Skip(2));
        var sanExtension = Assert.Single(csr.CertificateExtensions.OfType<X509SubjectAlternativeNameExtension>());
        Assert.True(sanExtension.Critical);
        Assert.Equal(24 * 3600, request.ValidityDuration);
        Assert.Equal(Echo.ToString(), request.Metadata.Fields["ImpersonatedIdentity"].StringValue);
        var call = Assert.Single(_istiod.Calls);
        Assert.Equal("Bearer ca-token", call.Authorization);
        Assert.Equal("Kubernetes", call.ClusterId);

        // The agent's own identity is asked for without impersonation.
        Assert.True(SpiffeId.TryParse(Own, out SpiffeId? own));
        await _client.IssueAsync(own.Value, TimeSpan.FromHours(1), CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.Null(_istiod.CertificateRequests[1].Metadata);
    }

    [Fact]
    public async Task A_leaf_for_another_identity_is_refused()
    {
        _istiod.ForceSan = "spiffe://cluster.local/ns/shop/sa/admin";
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => _client.IssueAsync(Echo, TimeSpan.FromHours(1), CancellationToken.None).AsTask().WaitAsync(Timeout));
        Assert.Contains("spiffe://cluster.local/ns/shop/sa/admin", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_client.TrustBundle);
    }

    [Fact]
    public async Task A_ca_outage_keeps_the_current_certificate_and_renewal_resumes_when_it_is_back()
    {
        var time = new ManualTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        await using var manager = new CertificateManager(_client, TimeSpan.FromHours(24), time, NullLogger.Instance);
        var failed = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        manager.RenewalFailed += (_, error) => failed.TrySetResult(error);
        WorkloadCertificate first = await manager.GetAsync(Echo, CancellationToken.None).AsTask().WaitAsync(Timeout);

        _istiod.CaAvailable = false;
        time.Advance(CertificateManager.RenewalTime(first) - time.GetUtcNow());
        Exception error = await failed.Task.WaitAsync(Timeout);
        Assert.Contains("Unavailable", error.Message, StringComparison.Ordinal);
        Assert.Same(first, await manager.GetAsync(Echo, CancellationToken.None).AsTask().WaitAsync(Timeout));

        _istiod.CaAvailable = true;
        int before = _istiod.CertificateRequests.Count;
        time.Advance(TimeSpan.FromSeconds(1));
        long deadline = Environment.TickCount64 + (long)Timeout.TotalMilliseconds;
        while (ReferenceEquals(first, Assert.Single(manager.Snapshot())))
        {
            Assert.True(Environment.TickCount64 < deadline, "timed out waiting for the renewal after the outage");
            await Task.Delay(20);
        }
        Assert.True(_istiod.CertificateRequests.Count > before);
        Assert.Equal(Echo, Assert.Single(manager.Snapshot()).Id);
    }
}
