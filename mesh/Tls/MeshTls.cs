using System.Diagnostics.CodeAnalysis;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.Identity;

namespace Ambient.Mesh.Tls;

/// <summary>
/// TLS settings for HBONE: TLS 1.3 only, ALPN h2, mutual authentication against the mesh trust bundle,
/// identities checked by URI SAN (never by DNS name).
/// </summary>
public static class MeshTls
{
    public static readonly SslApplicationProtocol Alpn = SslApplicationProtocol.Http2;

    /// <summary>
    /// Client options: present <paramref name="source"/>'s certificate, accept the server only if its chain ends
    /// in <paramref name="trustBundle"/> and its URI SAN is one of <paramref name="expectedServerIds"/>.
    /// </summary>
    public static SslClientAuthenticationOptions ClientOptions(
        WorkloadCertificate source,
        IReadOnlyList<string> expectedServerIds,
        X509Certificate2Collection trustBundle) => throw new NotImplementedException();

    /// <summary>
    /// Server options: present <paramref name="server"/>'s certificate, require a client certificate whose chain
    /// ends in <paramref name="trustBundle"/> and whose URI SAN is a SPIFFE id in <paramref name="trustDomain"/>.
    /// </summary>
    public static SslServerAuthenticationOptions ServerOptions(
        WorkloadCertificate server,
        X509Certificate2Collection trustBundle,
        string trustDomain) => throw new NotImplementedException();

    /// <summary>
    /// Validates a peer certificate (chain to the bundle, validity, SPIFFE URI SAN). On success gives the peer id;
    /// on failure a reason fit for an access log.
    /// </summary>
    public static bool TryValidatePeer(
        X509Certificate? certificate,
        X509Certificate2Collection trustBundle,
        string? requiredTrustDomain,
        [NotNullWhen(true)] out SpiffeId? peer,
        [NotNullWhen(false)] out string? error) => throw new NotImplementedException();

    /// <summary>The SPIFFE id in the peer certificate of an authenticated stream.</summary>
    public static SpiffeId? PeerId(SslStream stream) => throw new NotImplementedException();
}
