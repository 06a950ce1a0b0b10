using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Ambient.Mesh.Identity;

/// <summary>A workload's current certificate with what TLS needs, ready to hand to SslStream.</summary>
public sealed class WorkloadCertificate
{
    public required SpiffeId Id { get; init; }
    public required X509Certificate2 Leaf { get; init; }
    public required X509Certificate2Collection Intermediates { get; init; }
    public required SslStreamCertificateContext Context { get; init; }
    public DateTimeOffset NotBefore => Leaf.NotBefore.ToUniversalTime();
    public DateTimeOffset NotAfter => Leaf.NotAfter.ToUniversalTime();

    /// <summary>
    /// Wraps an issued certificate. The TLS context is built here, once per certificate: building it per handshake
    /// would redo chain building on every connection. Offline: no AIA or OCSP fetches from the data path.
    /// </summary>
    internal static WorkloadCertificate Create(SpiffeId id, IssuedCertificate issued) => new()
    {
        Id = id,
        Leaf = issued.Leaf,
        Intermediates = issued.Intermediates,
        Context = SslStreamCertificateContext.Create(issued.Leaf, issued.Intermediates, offline: true),
    };
}
