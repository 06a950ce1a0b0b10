using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.Identity;

namespace Ambient.Mesh.Tests.Identity;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class CertificateAuthorityTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly SpiffeId Workload = new("cluster.local", "default", "bookinfo");
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Generates_a_root_persists_it_and_reloads_the_same_root()
    {
        string stateDir = Path.Combine(_dir.Path, "state", "nested");
        string rootThumbprint;
        IssuedCertificate fromFirst;
        using (CertificateAuthority first = CertificateAuthority.LoadOrCreate(null, null, stateDir, "cluster.local"))
        {
            X509Certificate2 root = first.Root;
            rootThumbprint = root.Thumbprint;
            Assert.Contains("CN=Ambient Root CA", root.Subject, StringComparison.Ordinal);
            Assert.Contains("O=cluster.local", root.Subject, StringComparison.Ordinal);
            Assert.Equal(root.Subject, root.Issuer);
            var constraints = Assert.Single(root.Extensions.OfType<X509BasicConstraintsExtension>());
            Assert.True(constraints.CertificateAuthority);
            Assert.True(constraints.Critical);
            Assert.True(constraints.HasPathLengthConstraint);
            var usage = Assert.Single(root.Extensions.OfType<X509KeyUsageExtension>());
            Assert.Equal(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, usage.KeyUsages);
            Assert.Single(root.Extensions.OfType<X509SubjectKeyIdentifierExtension>());
            Assert.Equal(256, root.GetECDsaPublicKey()!.KeySize);
            Assert.InRange((root.NotAfter - root.NotBefore).TotalDays, 3649, 3651);
            Assert.Single(first.TrustBundle);
            fromFirst = first.Issue(Workload, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
            Assert.Empty(fromFirst.Intermediates);
        }

        string keyFile = Path.Combine(stateDir, "ca-key.pem");
        Assert.True(File.Exists(Path.Combine(stateDir, "ca-cert.pem")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        Assert.Contains("-----BEGIN PRIVATE KEY-----", File.ReadAllText(keyFile), StringComparison.Ordinal);
        // openssl prints RDNs in encoding order: O before CN, the conventional order.
        string subject = await OpenSsl.CheckedAsync(stateDir, "x509", "-in", "ca-cert.pem", "-noout", "-subject");
        Assert.Contains("subject=O = cluster.local, CN = Ambient Root CA", subject, StringComparison.Ordinal);
        await OpenSsl.CheckedAsync(stateDir, "ec", "-in", "ca-key.pem", "-noout", "-check");

        using CertificateAuthority second = CertificateAuthority.LoadOrCreate(null, null, stateDir, "cluster.local");
        Assert.Equal(rootThumbprint, second.Root.Thumbprint);
        // A leaf from before the restart still chains to the reloaded root, and the reloaded key signs for it too.
        AssertChainsTo(fromFirst.Leaf, second.TrustBundle);
        AssertChainsTo(second.Issue(Workload, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1)).Leaf, second.TrustBundle);
    }

    [Fact]
    public void State_with_a_certificate_but_no_key_is_an_error_naming_the_key_file()
    {
        using (CertificateAuthority.LoadOrCreate(null, null, _dir.Path, "cluster.local"))
        {
        }

        File.Delete(_dir.File("ca-key.pem"));
        var error = Assert.Throws<InvalidOperationException>(() => CertificateAuthority.LoadOrCreate(null, null, _dir.Path, "cluster.local"));
        Assert.Contains(_dir.File("ca-key.pem"), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_without_a_certificate_is_replaced_by_a_new_root()
    {
        // A crash between writing the key and the certificate leaves only the key; nothing was ever signed with it.
        File.WriteAllText(_dir.File("ca-key.pem"), "left over");
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(null, null, _dir.Path, "cluster.local");
        Assert.Contains("BEGIN PRIVATE KEY", File.ReadAllText(_dir.File("ca-key.pem")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Leaf_has_the_workload_certificate_profile()
    {
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(null, null, _dir.Path, "cluster.local");
        DateTimeOffset before = DateTimeOffset.UtcNow;
        IssuedCertificate issued = await ca.IssueAsync(Workload, TimeSpan.FromHours(24), CancellationToken.None).AsTask().WaitAsync(Timeout);
        X509Certificate2 leaf = issued.Leaf;

        Assert.True(leaf.HasPrivateKey);
        using ECDsa? publicKey = leaf.GetECDsaPublicKey();
        Assert.NotNull(publicKey);
        Assert.Equal(ECCurve.NamedCurves.nistP256.Oid.Value, publicKey.ExportParameters(false).Curve.Oid.Value);
        Assert.Equal("1.2.840.10045.4.3.2", leaf.SignatureAlgorithm.Value); // ecdsa-with-SHA256
        Assert.Equal(string.Empty, leaf.Subject);
        Assert.Equal(ca.Root.Subject, leaf.Issuer);

        Assert.True(SpiffeSan.TryRead(leaf, out SpiffeId id, out _));
        Assert.Equal(Workload, id);
        Assert.True(leaf.Extensions["2.5.29.17"]!.Critical);

        var constraints = Assert.Single(leaf.Extensions.OfType<X509BasicConstraintsExtension>());
        Assert.False(constraints.CertificateAuthority);
        var usage = Assert.Single(leaf.Extensions.OfType<X509KeyUsageExtension>());
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, usage.KeyUsages);
        Assert.True(usage.Critical);
        var eku = Assert.Single(leaf.Extensions.OfType<X509EnhancedKeyUsageExtension>());
        Assert.Equal(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value).Order());

        var ski = Assert.Single(leaf.Extensions.OfType<X509SubjectKeyIdentifierExtension>());
        Assert.NotNull(ski.SubjectKeyIdentifier);
        var aki = Assert.Single(leaf.Extensions.OfType<X509AuthorityKeyIdentifierExtension>());
        var rootSki = Assert.Single(ca.Root.Extensions.OfType<X509SubjectKeyIdentifierExtension>());
        Assert.Equal(rootSki.SubjectKeyIdentifierBytes.ToArray(), aki.KeyIdentifier!.Value.ToArray());

        byte[] serial = leaf.SerialNumberBytes.ToArray();
        Assert.Equal(16, serial.Length);
        Assert.True(serial[0] is > 0 and < 0x80, "serial must be positive and minimally encoded");
        X509Certificate2 another = ca.Issue(Workload, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddHours(1)).Leaf;
        Assert.NotEqual(leaf.SerialNumber, another.SerialNumber);

        // NotBefore a minute in the past (second precision), lifetime as asked.
        DateTimeOffset notBefore = leaf.NotBefore.ToUniversalTime();
        Assert.InRange(notBefore, before.AddMinutes(-1).AddSeconds(-2), before.AddMinutes(-1).AddSeconds(2));
        Assert.InRange(leaf.NotAfter - leaf.NotBefore, TimeSpan.FromHours(24) + TimeSpan.FromSeconds(58), TimeSpan.FromHours(24) + TimeSpan.FromSeconds(62));
        AssertChainsTo(leaf, ca.TrustBundle);
    }

    [Fact]
    public void Leaf_never_outlives_the_CA()
    {
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(null, null, _dir.Path, "cluster.local");
        X509Certificate2 leaf = ca.Issue(Workload, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddYears(20)).Leaf;
        Assert.Equal(ca.Root.NotAfter, leaf.NotAfter);
    }

    [Fact]
    public void Refuses_ids_that_would_not_round_trip()
    {
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(null, null, _dir.Path, "cluster.local");
        Assert.Throws<ArgumentException>(() => ca.Issue(new SpiffeId("Cluster.Local", "a", "b"), DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddHours(1)));
    }

    [Fact]
    public async Task Openssl_verifies_our_leaf_for_client_and_server_use()
    {
        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(null, null, _dir.Path, "cluster.local");
        IssuedCertificate issued = await ca.IssueAsync(Workload, TimeSpan.FromHours(1), CancellationToken.None).AsTask().WaitAsync(Timeout);
        await File.WriteAllTextAsync(_dir.File("root.pem"), ca.Root.ExportCertificatePem());
        await File.WriteAllTextAsync(_dir.File("leaf.pem"), issued.Leaf.ExportCertificatePem());

        foreach (string purpose in new[] { "sslclient", "sslserver" })
        {
            string output = await OpenSsl.CheckedAsync(_dir.Path, "verify", "-x509_strict", "-purpose", purpose, "-CAfile", "root.pem", "leaf.pem");
            Assert.Contains("leaf.pem: OK", output, StringComparison.Ordinal);
        }

        string text = await OpenSsl.CheckedAsync(_dir.Path, "x509", "-in", "leaf.pem", "-noout", "-text");
        Assert.Contains("URI:spiffe://cluster.local/ns/default/sa/bookinfo", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Loads_an_openssl_EC_CA_with_a_SEC1_key()
    {
        await OpenSsl.CreateEcRootAsync(_dir, "ca", "/O=example.org/CN=Interop CA");
        Assert.StartsWith("-----BEGIN EC PRIVATE KEY-----", await File.ReadAllTextAsync(_dir.File("ca-key.pem")), StringComparison.Ordinal);

        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(_dir.File("ca-cert.pem"), _dir.File("ca-key.pem"), _dir.File("unused"), "example.org");
        using X509Certificate2 fileRoot = X509Certificate2.CreateFromPem(File.ReadAllText(_dir.File("ca-cert.pem")));
        Assert.Equal(fileRoot.Thumbprint, ca.Root.Thumbprint);
        Assert.False(Directory.Exists(_dir.File("unused")));

        IssuedCertificate issued = ca.Issue(new SpiffeId("example.org", "ns1", "sa1"), DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
        await File.WriteAllTextAsync(_dir.File("leaf.pem"), issued.Leaf.ExportCertificatePem());
        string output = await OpenSsl.CheckedAsync(_dir.Path, "verify", "-CAfile", "ca-cert.pem", "leaf.pem");
        Assert.Contains("OK", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Loads_an_openssl_RSA_CA_with_a_PKCS8_key()
    {
        await File.WriteAllTextAsync(_dir.File("min.cnf"), OpenSsl.MinimalConfig);
        await OpenSsl.CheckedAsync(_dir.Path, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa-key.pem");
        await OpenSsl.CheckedAsync(_dir.Path, "req", "-x509", "-new", "-key", "rsa-key.pem", "-subj", "/CN=RSA CA", "-days", "30",
            "-config", "min.cnf", "-extensions", "v3_ca", "-out", "rsa-cert.pem");
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", await File.ReadAllTextAsync(_dir.File("rsa-key.pem")), StringComparison.Ordinal);

        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(_dir.File("rsa-cert.pem"), _dir.File("rsa-key.pem"), _dir.Path, "cluster.local");
        IssuedCertificate issued = ca.Issue(Workload, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
        Assert.Equal("1.2.840.113549.1.1.11", issued.Leaf.SignatureAlgorithm.Value); // sha256WithRSAEncryption
        Assert.Equal(256, issued.Leaf.GetECDsaPublicKey()!.KeySize);
        await File.WriteAllTextAsync(_dir.File("leaf.pem"), issued.Leaf.ExportCertificatePem());
        await OpenSsl.CheckedAsync(_dir.Path, "verify", "-CAfile", "rsa-cert.pem", "leaf.pem");
    }

    [Fact]
    public async Task An_intermediate_CA_sends_its_chain_and_trusts_the_root()
    {
        await OpenSsl.CreateIntermediateAsync(_dir);
        await File.WriteAllTextAsync(_dir.File("chain.pem"),
            await File.ReadAllTextAsync(_dir.File("int-cert.pem")) + await File.ReadAllTextAsync(_dir.File("root-cert.pem")));

        using CertificateAuthority ca = CertificateAuthority.LoadOrCreate(_dir.File("chain.pem"), _dir.File("int-key.pem"), _dir.Path, "example.org");
        using X509Certificate2 root = X509Certificate2.CreateFromPem(File.ReadAllText(_dir.File("root-cert.pem")));
        using X509Certificate2 intermediate = X509Certificate2.CreateFromPem(File.ReadAllText(_dir.File("int-cert.pem")));
        Assert.Equal(root.Thumbprint, ca.Root.Thumbprint);
        Assert.Equal(root.Thumbprint, Assert.Single(ca.TrustBundle).Thumbprint);

        IssuedCertificate issued = ca.Issue(new SpiffeId("example.org", "a", "b"), DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
        Assert.Equal(intermediate.Thumbprint, Assert.Single(issued.Intermediates).Thumbprint);
        Assert.Equal(intermediate.Subject, issued.Leaf.Issuer);

        await File.WriteAllTextAsync(_dir.File("leaf.pem"), issued.Leaf.ExportCertificatePem());
        await OpenSsl.CheckedAsync(_dir.Path, "verify", "-CAfile", "root-cert.pem", "-untrusted", "int-cert.pem", "leaf.pem");
    }

    [Fact]
    public async Task An_intermediate_without_its_root_is_refused()
    {
        await OpenSsl.CreateIntermediateAsync(_dir);
        var error = Assert.Throws<InvalidOperationException>(() =>
            CertificateAuthority.LoadOrCreate(_dir.File("int-cert.pem"), _dir.File("int-key.pem"), _dir.Path, "example.org"));
        Assert.Contains(_dir.File("int-cert.pem"), error.Message, StringComparison.Ordinal);
        Assert.Contains("no root", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_files_give_errors_naming_the_file()
    {
        await OpenSsl.CreateEcRootAsync(_dir, "ca", "/CN=Good CA");
        await OpenSsl.CreateEcRootAsync(_dir, "other", "/CN=Other CA");
        string cert = _dir.File("ca-cert.pem");
        string key = _dir.File("ca-key.pem");

        AssertLoadFails(_dir.File("missing.pem"), key, _dir.File("missing.pem"), "cannot be read");
        AssertLoadFails(cert, _dir.File("missing-key.pem"), _dir.File("missing-key.pem"), "cannot be read");

        await File.WriteAllTextAsync(_dir.File("garbage.pem"), "not a certificate");
        AssertLoadFails(_dir.File("garbage.pem"), key, _dir.File("garbage.pem"), "no PEM 'CERTIFICATE' block");

        await File.WriteAllTextAsync(_dir.File("broken.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        AssertLoadFails(_dir.File("broken.pem"), key, _dir.File("broken.pem"), "cannot be decoded");

        AssertLoadFails(cert, _dir.File("other-key.pem"), _dir.File("other-key.pem"), "does not match");
        AssertLoadFails(cert, _dir.File("garbage.pem"), _dir.File("garbage.pem"), "no EC private key");

        await OpenSsl.CheckedAsync(_dir.Path, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa-key.pem");
        AssertLoadFails(cert, _dir.File("rsa-key.pem"), _dir.File("rsa-key.pem"), "no EC private key");

        await OpenSsl.CheckedAsync(_dir.Path, "pkcs8", "-topk8", "-in", "ca-key.pem", "-passout", "pass:secret", "-out", "encrypted-key.pem");
        AssertLoadFails(cert, _dir.File("encrypted-key.pem"), _dir.File("encrypted-key.pem"), "encrypted");

        await OpenSsl.CheckedAsync(_dir.Path, "req", "-x509", "-new", "-key", "ca-key.pem", "-subj", "/CN=Just a leaf", "-days", "30",
            "-config", "min.cnf", "-extensions", "v3_leaf", "-out", "leaf-cert.pem");
        AssertLoadFails(_dir.File("leaf-cert.pem"), key, _dir.File("leaf-cert.pem"), "not a CA");

        // OpenSSL 3.0's req cannot back-date, so the expired CA is made here and written as PEM.
        using (var expiredKey = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            var request = new CertificateRequest("CN=Expired CA", expiredKey, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            using X509Certificate2 expired = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-10), DateTimeOffset.UtcNow.AddDays(-1));
            await File.WriteAllTextAsync(_dir.File("expired-cert.pem"), expired.ExportCertificatePem());
            await File.WriteAllTextAsync(_dir.File("expired-key.pem"), expiredKey.ExportECPrivateKeyPem());
        }

        AssertLoadFails(_dir.File("expired-cert.pem"), _dir.File("expired-key.pem"), _dir.File("expired-cert.pem"), "expired");

        var half = Assert.Throws<InvalidOperationException>(() => CertificateAuthority.LoadOrCreate(cert, null, _dir.Path, "cluster.local"));
        Assert.Contains("must be set together", half.Message, StringComparison.Ordinal);
    }

    private void AssertLoadFails(string certFile, string keyFile, string namedFile, string expected)
    {
        var error = Assert.Throws<InvalidOperationException>(() => CertificateAuthority.LoadOrCreate(certFile, keyFile, _dir.Path, "cluster.local"));
        Assert.Contains($"'{namedFile}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    private static void AssertChainsTo(X509Certificate2 leaf, X509Certificate2Collection bundle)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(bundle);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.True(chain.Build(leaf), CertificateAuthority.DescribeChainStatus(chain));
    }
}
