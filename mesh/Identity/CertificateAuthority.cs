using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Ambient.Mesh.Identity;

/// <summary>Anything that can sign a workload certificate for an identity (the local CA; later istiod's CA over gRPC).</summary>
public interface ICertificateIssuer
{
    /// <summary>Trust anchors peers are checked against.</summary>
    X509Certificate2Collection TrustBundle { get; }

    /// <summary>Issue an ECDSA P-256 leaf with URI SAN = <paramref name="id"/>, private key attached; chain excludes the root.</summary>
    ValueTask<IssuedCertificate> IssueAsync(SpiffeId id, TimeSpan lifetime, CancellationToken cancellationToken);
}

public sealed record IssuedCertificate(X509Certificate2 Leaf, X509Certificate2Collection Intermediates);

/// <summary>
/// A local CA: loads a PEM cert + key (<c>ca.certFile</c>/<c>ca.keyFile</c>) or generates a root on first
/// start and persists it under the state directory, so restarts keep the same trust anchor.
/// </summary>
public sealed class CertificateAuthority : ICertificateIssuer, IDisposable
{
    internal const string StateCertFileName = "ca-cert.pem";
    internal const string StateKeyFileName = "ca-key.pem";
    internal const string RootCommonName = "Ambient Root CA";
    internal static readonly TimeSpan RootLifetime = TimeSpan.FromDays(3650);

    /// <summary>Leaves start a minute in the past so a peer whose clock lags a little still accepts them.</summary>
    internal static readonly TimeSpan Backdate = TimeSpan.FromMinutes(1);

    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1", "serverAuth");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2", "clientAuth");

    // Istio's workload certificates carry an empty subject; SPIFFE X.509-SVID 4.3 then requires the SAN to be critical.
    private static readonly X500DistinguishedName EmptySubject = new X500DistinguishedNameBuilder().Build();

    private readonly X509Certificate2 _signer;
    private readonly AsymmetricAlgorithm _key;
    private readonly X509SignatureGenerator _generator;
    private readonly HashAlgorithmName _hash;
    private readonly X509AuthorityKeyIdentifierExtension? _authorityKeyId;
    private readonly X509Certificate2[] _intermediates;
    private int _disposed;

    private CertificateAuthority(X509Certificate2 signer, AsymmetricAlgorithm key, X509Certificate2[] intermediates, X509Certificate2Collection roots)
    {
        _signer = signer;
        _key = key;
        _intermediates = intermediates;
        TrustBundle = roots;
        Root = roots[0];
        switch (key)
        {
            case ECDsa ec:
                _generator = X509SignatureGenerator.CreateForECDsa(ec);
                // Match the digest to the curve strength (RFC 5480 section 4), as OpenSSL does by default.
                _hash = ec.KeySize switch { > 384 => HashAlgorithmName.SHA512, > 256 => HashAlgorithmName.SHA384, _ => HashAlgorithmName.SHA256 };
                break;
            case RSA rsa:
                _generator = X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1);
                _hash = HashAlgorithmName.SHA256;
                break;
            default:
                throw new ArgumentException("CA key must be ECDSA or RSA", nameof(key));
        }

        foreach (X509Extension extension in signer.Extensions)
        {
            if (extension is X509SubjectKeyIdentifierExtension ski)
            {
                _authorityKeyId = X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(ski);
            }
        }
    }

    /// <summary>
    /// Loads the CA from <paramref name="certFile"/>/<paramref name="keyFile"/> when given; otherwise from
    /// <c>ca-cert.pem</c>/<c>ca-key.pem</c> in <paramref name="stateDir"/>, generating and persisting a new root there
    /// the first time. Throws <see cref="InvalidOperationException"/> whose message names the offending file.
    /// </summary>
    public static CertificateAuthority LoadOrCreate(string? certFile, string? keyFile, string stateDir, string trustDomain)
    {
        if (!SpiffeId.IsTrustDomain(trustDomain))
        {
            throw new ArgumentException($"'{trustDomain}' is not a valid SPIFFE trust domain (lowercase letters, digits, '.', '-', '_')", nameof(trustDomain));
        }

        if (!string.IsNullOrEmpty(certFile) || !string.IsNullOrEmpty(keyFile))
        {
            if (string.IsNullOrEmpty(certFile) || string.IsNullOrEmpty(keyFile))
            {
                throw new InvalidOperationException("ca.certFile and ca.keyFile must be set together (the CA certificate and its private key, PEM)");
            }

            return Load(certFile, keyFile);
        }

        string statePath = Path.GetFullPath(stateDir);
        string stateCert = Path.Combine(statePath, StateCertFileName);
        string stateKey = Path.Combine(statePath, StateKeyFileName);
        if (File.Exists(stateCert))
        {
            if (!File.Exists(stateKey))
            {
                throw new InvalidOperationException(
                    $"CA key file '{stateKey}' is missing but '{stateCert}' exists; restore the key, or delete both to generate a new root (peers will then need the new trust anchor)");
            }

            return Load(stateCert, stateKey);
        }

        // No certificate: either first start, or a crash between persisting the key and the certificate. In the
        // latter case the key was never used for anything published, so generating afresh loses nothing.
        return CreateRoot(statePath, trustDomain);
    }

    /// <summary>The trust anchor at the top of this CA's chain.</summary>
    public X509Certificate2 Root { get; }

    public X509Certificate2Collection TrustBundle { get; }

    public ValueTask<IssuedCertificate> IssueAsync(SpiffeId id, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lifetime, TimeSpan.Zero);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        // Signing is a few hundred microseconds of CPU; not worth a thread hop.
        return ValueTask.FromResult(Issue(id, now - Backdate, now + lifetime));
    }

    /// <summary>Issues a leaf with explicit validity (tests use it for expired and not-yet-valid certificates).</summary>
    internal IssuedCertificate Issue(SpiffeId id, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 unkeyed = Sign(new PublicKey(key), id, notBefore, notAfter);
        // On Linux an ephemeral key attached this way is usable by SslStream (OpenSSL takes its own reference to the
        // EVP_PKEY), so disposing our ECDsa handle afterwards is safe. Windows would need a PFX round-trip.
        X509Certificate2 leaf = unkeyed.CopyWithPrivateKey(key);
        return new IssuedCertificate(leaf, new X509Certificate2Collection(_intermediates));
    }

    /// <summary>
    /// Signs a leaf for a key held elsewhere (a CSR's public key: the node agent's CA endpoint for waypoints), with the
    /// same profile as <see cref="IssueAsync"/>. The caller has checked that <paramref name="id"/> is what the requester
    /// may hold; the returned chain is leaf, intermediates, roots, as Istio's CA answers.
    /// </summary>
    public IReadOnlyList<X509Certificate2> IssueForKey(PublicKey publicKey, SpiffeId id, TimeSpan lifetime)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lifetime, TimeSpan.Zero);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        var chain = new List<X509Certificate2> { Sign(publicKey, id, now - Backdate, now + lifetime) };
        chain.AddRange(_intermediates);
        chain.AddRange(TrustBundle);
        return chain;
    }

    private X509Certificate2 Sign(PublicKey publicKey, SpiffeId id, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        string uri = id.ToString();
        // A hand-built SpiffeId could hold characters that System.Uri would normalise (e.g. an uppercase host),
        // leaving a SAN that differs from the id asked for; refuse instead.
        if (!SpiffeId.TryParse(uri, out SpiffeId? parsed) || parsed.Value != id)
        {
            throw new ArgumentException($"'{uri}' is not a valid SPIFFE id", nameof(id));
        }

        // A leaf must not outlive its issuer: the chain would stop verifying before the leaf expired, and the
        // manager would renew by the leaf's dates, too late.
        DateTimeOffset signerNotAfter = new(_signer.NotAfter);
        if (notAfter > signerNotAfter)
        {
            notAfter = signerNotAfter;
        }

        // The request's hash is what the issuer's generator signs with, so it follows the issuer key, not the leaf's.
        var request = new CertificateRequest(EmptySubject, publicKey, _hash);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        // ECDSA keys only sign (the TLS 1.3 key exchange is ephemeral ECDHE), so keyEncipherment would be wrong.
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuth, ClientAuth], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(uri));
        request.CertificateExtensions.Add(san.Build(critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        if (_authorityKeyId is not null)
        {
            request.CertificateExtensions.Add(_authorityKeyId);
        }

        return request.Create(_signer.SubjectName, _generator, notBefore, notAfter, NewSerial());
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _key.Dispose();
        }
    }

    private static byte[] NewSerial()
    {
        // RFC 5280 4.1.2.2: positive, at most 20 octets. 128 random bits; clearing the top bit keeps the DER
        // INTEGER positive, and a non-zero first octet keeps the encoding minimal.
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        if (serial[0] == 0)
        {
            serial[0] = 1;
        }

        return serial;
    }

    private static CertificateAuthority CreateRoot(string stateDir, string trustDomain)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        try
        {
            // The builder encodes the last-added RDN first; this yields the conventional O=..., CN=... order.
            var name = new X500DistinguishedNameBuilder();
            name.AddCommonName(RootCommonName);
            name.AddOrganizationName(trustDomain);
            var request = new CertificateRequest(name.Build(), key, HashAlgorithmName.SHA256);
            // pathlen 0: this root only ever signs workload leaves directly.
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
            DateTimeOffset now = DateTimeOffset.UtcNow;
            using X509Certificate2 root = request.Create(
                request.SubjectName, X509SignatureGenerator.CreateForECDsa(key), now - Backdate, now + RootLifetime, NewSerial());

            Persist(stateDir, root, key);
            var anchor = X509CertificateLoader.LoadCertificate(root.RawData);
            return new CertificateAuthority(anchor, key, [], [anchor]);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    private static void Persist(string stateDir, X509Certificate2 root, ECDsa key)
    {
        // The agent is Linux-only; the guard is also what tells the analyzer the Unix file modes below are reachable.
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("persisting the CA key with owner-only permissions needs a Unix file system");
        }

        try
        {
            Directory.CreateDirectory(stateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string keyPath = Path.Combine(stateDir, StateKeyFileName);
            string certPath = Path.Combine(stateDir, StateCertFileName);
            // Key first, certificate last: the certificate's presence is what marks the pair complete (see LoadOrCreate).
            WriteAtomically(keyPath, key.ExportPkcs8PrivateKeyPem(), UnixFileMode.UserRead | UnixFileMode.UserWrite);
            WriteAtomically(certPath, root.ExportCertificatePem(),
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"Could not persist the generated CA under '{stateDir}': {ex.Message}", ex);
        }
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void WriteAtomically(string path, string contents, UnixFileMode mode)
    {
        string temporary = path + ".tmp";
        // UnixCreateMode only applies to a newly created file, so a leftover temporary must go first.
        File.Delete(temporary);
        using (var stream = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = mode,
        }))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(contents));
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    private static CertificateAuthority Load(string certFile, string keyFile)
    {
        string certPem = ReadFile(certFile, "CA certificate file");
        string keyPem = ReadFile(keyFile, "CA key file");

        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(certPem);
        }
        catch (CryptographicException ex)
        {
            throw new InvalidOperationException($"CA certificate file '{certFile}' holds a PEM CERTIFICATE block that cannot be decoded: {ex.Message}", ex);
        }

        if (certificates.Count == 0)
        {
            throw new InvalidOperationException($"CA certificate file '{certFile}' contains no PEM 'CERTIFICATE' block");
        }

        X509Certificate2 signer = certificates[0];
        CheckIsUsableCa(signer, certFile);
        AsymmetricAlgorithm key = ImportMatchingKey(keyPem, keyFile, signer, certFile);
        try
        {
            (X509Certificate2[] intermediates, X509Certificate2Collection roots) = BuildChain(certificates, certFile);
            return new CertificateAuthority(signer, key, intermediates, roots);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    private static string ReadFile(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"{what} '{path}' cannot be read: {ex.Message}", ex);
        }
    }

    private static void CheckIsUsableCa(X509Certificate2 certificate, string certFile)
    {
        X509BasicConstraintsExtension? constraints = null;
        X509KeyUsageExtension? usage = null;
        foreach (X509Extension extension in certificate.Extensions)
        {
            switch (extension)
            {
                case X509BasicConstraintsExtension bc:
                    constraints = bc;
                    break;
                case X509KeyUsageExtension ku:
                    usage = ku;
                    break;
            }
        }

        if (constraints is null || !constraints.CertificateAuthority)
        {
            throw new InvalidOperationException(
                $"CA certificate file '{certFile}': the first certificate ({certificate.Subject}) is not a CA (basicConstraints CA:TRUE is missing)");
        }

        if (usage is not null && (usage.KeyUsages & X509KeyUsageFlags.KeyCertSign) == 0)
        {
            throw new InvalidOperationException(
                $"CA certificate file '{certFile}': the first certificate ({certificate.Subject}) has keyUsage without keyCertSign, so it may not sign certificates");
        }

        DateTime now = DateTime.Now;
        if (now > certificate.NotAfter)
        {
            throw new InvalidOperationException(
                $"CA certificate file '{certFile}': the CA certificate ({certificate.Subject}) expired at {certificate.NotAfter.ToUniversalTime():u}");
        }

        if (now < certificate.NotBefore)
        {
            throw new InvalidOperationException(
                $"CA certificate file '{certFile}': the CA certificate ({certificate.Subject}) is not valid before {certificate.NotBefore.ToUniversalTime():u}");
        }
    }

    private static AsymmetricAlgorithm ImportMatchingKey(string keyPem, string keyFile, X509Certificate2 signer, string certFile)
    {
        if (keyPem.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"CA key file '{keyFile}' is encrypted; provide an unencrypted PKCS#8 or SEC1 PEM key (keep it readable only by the agent)");
        }

        using ECDsa? ecPublic = signer.GetECDsaPublicKey();
        if (ecPublic is not null)
        {
            var ec = ECDsa.Create();
            try
            {
                // Accepts both PKCS#8 "PRIVATE KEY" and SEC1 "EC PRIVATE KEY".
                ec.ImportFromPem(keyPem);
                ECParameters mine = ec.ExportParameters(false);
                ECParameters theirs = ecPublic.ExportParameters(false);
                if (!mine.Q.X.AsSpan().SequenceEqual(theirs.Q.X) || !mine.Q.Y.AsSpan().SequenceEqual(theirs.Q.Y))
                {
                    throw new InvalidOperationException($"CA key file '{keyFile}' does not match the certificate in '{certFile}' (different public key)");
                }

                return ec;
            }
            catch (Exception ex) when (ex is ArgumentException or CryptographicException)
            {
                ec.Dispose();
                throw new InvalidOperationException(
                    $"CA key file '{keyFile}' holds no EC private key ('PRIVATE KEY' or 'EC PRIVATE KEY' PEM) matching the EC certificate in '{certFile}': {ex.Message}", ex);
            }
            catch
            {
                ec.Dispose();
                throw;
            }
        }

        using RSA? rsaPublic = signer.GetRSAPublicKey();
        if (rsaPublic is not null)
        {
            var rsa = RSA.Create();
            try
            {
                rsa.ImportFromPem(keyPem);
                RSAParameters mine = rsa.ExportParameters(false);
                RSAParameters theirs = rsaPublic.ExportParameters(false);
                if (!mine.Modulus.AsSpan().SequenceEqual(theirs.Modulus) || !mine.Exponent.AsSpan().SequenceEqual(theirs.Exponent))
                {
                    throw new InvalidOperationException($"CA key file '{keyFile}' does not match the certificate in '{certFile}' (different public key)");
                }

                return rsa;
            }
            catch (Exception ex) when (ex is ArgumentException or CryptographicException)
            {
                rsa.Dispose();
                throw new InvalidOperationException(
                    $"CA key file '{keyFile}' holds no RSA private key ('PRIVATE KEY' or 'RSA PRIVATE KEY' PEM) matching the RSA certificate in '{certFile}': {ex.Message}", ex);
            }
            catch
            {
                rsa.Dispose();
                throw;
            }
        }

        throw new InvalidOperationException($"CA certificate file '{certFile}': unsupported key algorithm {signer.PublicKey.Oid.FriendlyName ?? signer.PublicKey.Oid.Value}; use ECDSA or RSA");
    }

    /// <summary>
    /// The file is the CA certificate followed by the rest of its chain (the usual cert-chain.pem layout). Workload
    /// chains carry everything but the root; the self-signed certificates become the trust bundle.
    /// </summary>
    private static (X509Certificate2[] Intermediates, X509Certificate2Collection Roots) BuildChain(X509Certificate2Collection certificates, string certFile)
    {
        X509Certificate2 signer = certificates[0];
        var roots = new X509Certificate2Collection();
        var others = new X509Certificate2Collection();
        foreach (X509Certificate2 certificate in certificates)
        {
            if (IsSelfIssued(certificate))
            {
                roots.Add(certificate);
            }
            else
            {
                others.Add(certificate);
            }
        }

        if (roots.Count == 0)
        {
            throw new InvalidOperationException(
                $"CA certificate file '{certFile}': {signer.Subject} is an intermediate but the file holds no root; append the chain up to the self-signed root");
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.ExtraStore.AddRange(others);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (!chain.Build(signer))
        {
            throw new InvalidOperationException(
                $"CA certificate file '{certFile}': {signer.Subject} does not chain to a root in the file: {DescribeChainStatus(chain)}");
        }

        // Chain elements run leaf (our CA) to root; everything but the root goes on the wire. The elements are
        // mapped back to the file's certificates because the chain owns (and disposes) its own copies.
        var intermediates = new X509Certificate2[chain.ChainElements.Count - 1];
        for (int i = 0; i < intermediates.Length; i++)
        {
            intermediates[i] = FindByRawData(certificates, chain.ChainElements[i].Certificate);
        }

        // The anchor this CA actually chains to comes first: it is what Root reports.
        X509Certificate2 anchor = FindByRawData(roots, chain.ChainElements[^1].Certificate);
        roots.Remove(anchor);
        roots.Insert(0, anchor);
        return (intermediates, roots);
    }

    private static X509Certificate2 FindByRawData(X509Certificate2Collection certificates, X509Certificate2 wanted)
    {
        foreach (X509Certificate2 certificate in certificates)
        {
            if (certificate.RawDataMemory.Span.SequenceEqual(wanted.RawDataMemory.Span))
            {
                return certificate;
            }
        }

        throw new InvalidOperationException($"chain element {wanted.Subject} not found among the loaded certificates");
    }

    private static bool IsSelfIssued(X509Certificate2 certificate) =>
        certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);

    internal static string DescribeChainStatus(X509Chain chain)
    {
        var parts = new List<string>();
        foreach (X509ChainStatus status in chain.ChainStatus)
        {
            parts.Add($"{status.Status} ({status.StatusInformation.Trim()})");
        }

        return parts.Count == 0 ? "unknown chain error" : string.Join("; ", parts);
    }
}
