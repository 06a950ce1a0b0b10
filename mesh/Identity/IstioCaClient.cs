using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Protos.Istio.Ca;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Ambient.Mesh.Identity;

/// <summary>
/// Istio's CA (istiod, <c>istio.v1.auth.IstioCertificateService/CreateCertificate</c>) behind the issuer seam, so no
/// node holds a CA key: each certificate is an ECDSA P-256 key made here, a PKCS#10 request with the SPIFFE id as its
/// only (critical) URI SAN and an empty subject, the requested lifetime, and the <c>ImpersonatedIdentity</c> metadata
/// when the agent asks for a workload's identity rather than its own. The returned chain (leaf, intermediates, roots
/// last) is checked before use (our key, the SAN asked for, a chain to the returned roots), and its roots become the
/// trust bundle peers are checked against. Renewal and back-off stay with <see cref="CertificateManager"/>.
/// </summary>
public sealed class IstioCaClient : ICertificateIssuer, IDisposable
{
    private static readonly X500DistinguishedName EmptySubject = new X500DistinguishedNameBuilder().Build();

    private readonly ControlPlaneConnection _connection;
    private readonly IstioCertificateService.IstioCertificateServiceClient _client;
    private readonly string? _ownIdentity;
    private X509Certificate2Collection _trust = [];

    /// <param name="ownIdentity">The agent's own SPIFFE id (its service account); a request for any other id impersonates.</param>
    public IstioCaClient(ControlPlaneConnection connection, string? ownIdentity)
    {
        _connection = connection;
        _ownIdentity = ownIdentity;
        _client = new IstioCertificateService.IstioCertificateServiceClient(connection.Channel);
    }

    /// <summary>The roots of the last chain the CA returned (empty until the first certificate).</summary>
    public X509Certificate2Collection TrustBundle => Volatile.Read(ref _trust);

    /// <summary>How long one CreateCertificate call may take before it counts as a failure (the manager backs off).</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(15);

    public async ValueTask<IssuedCertificate> IssueAsync(SpiffeId id, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest(EmptySubject, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(id.ToString()));
        csr.CertificateExtensions.Add(san.Build(critical: true));
        var request = new IstioCertificateRequest
        {
            Csr = csr.CreateSigningRequestPem(),
            ValidityDuration = (long)Math.Ceiling(lifetime.TotalSeconds),
        };
        if (id.ToString() != _ownIdentity)
        {
            request.Metadata = new Struct { Fields = { ["ImpersonatedIdentity"] = Value.ForString(id.ToString()) } };
        }

        IstioCertificateResponse response;
        try
        {
            response = await _client.CreateCertificateAsync(
                request, new CallOptions(headers: _connection.Headers(), deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken)).ConfigureAwait(false);
        }
        catch (RpcException ex)
        {
            string reason = _connection.Describe(ex);
            throw new InvalidOperationException($"the Istio CA at {_connection.Address} refused or failed the request for {id}: {reason}", ex);
        }
        return Accept(id, key, response);
    }

    /// <summary>Checks the chain and attaches our key to the leaf. Anything off is refused: a wrong leaf must never be served.</summary>
    private IssuedCertificate Accept(SpiffeId id, ECDsa key, IstioCertificateResponse response)
    {
        if (response.CertChain.Count < 2)
        {
            throw new InvalidOperationException($"the Istio CA returned {response.CertChain.Count} certificates for {id}; a chain needs the leaf and a root");
        }
        var chain = new List<X509Certificate2>();
        foreach (string pem in response.CertChain)
        {
            // An entry may itself hold several PEM blocks (istiod sends the root bundle as one string).
            var part = new X509Certificate2Collection();
            part.ImportFromPem(pem);
            chain.AddRange(part);
        }
        X509Certificate2 leaf = chain[0];
        using (ECDsa? leafKey = leaf.GetECDsaPublicKey())
        {
            if (leafKey is null || !leafKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
            {
                throw new InvalidOperationException($"the Istio CA returned a leaf for {id} that is not for the key we sent");
            }
        }
        if (!SpiffeSan.TryRead(leaf, out SpiffeId got, out string? sanError) || got != id)
        {
            throw new InvalidOperationException($"the Istio CA returned a leaf for {id} with SAN {(sanError ?? got.ToString())}");
        }
        // Roots: the self-signed certificates at the end; a chain that ends without one trusts its last certificate.
        int firstRoot = chain.Count;
        while (firstRoot > 1 && chain[firstRoot - 1].SubjectName.RawData.AsSpan().SequenceEqual(chain[firstRoot - 1].IssuerName.RawData))
        {
            firstRoot--;
        }
        if (firstRoot == chain.Count)
        {
            firstRoot = chain.Count - 1;
        }
        var roots = new X509Certificate2Collection();
        for (int i = firstRoot; i < chain.Count; i++)
        {
            roots.Add(chain[i]);
        }
        var intermediates = new X509Certificate2Collection();
        for (int i = 1; i < firstRoot; i++)
        {
            intermediates.Add(chain[i]);
        }
        using (var verify = new X509Chain())
        {
            verify.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            verify.ChainPolicy.CustomTrustStore.AddRange(roots);
            verify.ChainPolicy.ExtraStore.AddRange(intermediates);
            verify.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (!verify.Build(leaf))
            {
                throw new InvalidOperationException($"the Istio CA's chain for {id} does not verify: "
                    + string.Join(", ", verify.ChainStatus.Select(s => s.StatusInformation.Trim())));
            }
        }
        Volatile.Write(ref _trust, roots);
        return new IssuedCertificate(leaf.CopyWithPrivateKey(key), intermediates);
    }

    public void Dispose() => _connection.Dispose();
}
