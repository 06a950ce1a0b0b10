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
    public static CertificateAuthority LoadOrCreate(string? certFile, string? keyFile, string stateDir, string trustDomain) =>
        throw new NotImplementedException();

    public X509Certificate2 Root => throw new NotImplementedException();

    public X509Certificate2Collection TrustBundle => throw new NotImplementedException();

    public ValueTask<IssuedCertificate> IssueAsync(SpiffeId id, TimeSpan lifetime, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    public void Dispose() => throw new NotImplementedException();
}
