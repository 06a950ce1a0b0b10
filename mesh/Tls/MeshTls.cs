using System.Diagnostics.CodeAnalysis;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
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

    // Why a handshake was refused, kept with the stream so the access log can say it (SslStream only reports
    // "rejected by the callback"). Weak keys: the entry goes when the stream does.
    private static readonly ConditionalWeakTable<SslStream, string> Rejections = new();

    /// <summary>
    /// Client options: present <paramref name="source"/>'s certificate, accept the server only if its chain ends
    /// in <paramref name="trustBundle"/> and its URI SAN is one of <paramref name="expectedServerIds"/>.
    /// </summary>
    public static SslClientAuthenticationOptions ClientOptions(
        WorkloadCertificate source,
        IReadOnlyList<string> expectedServerIds,
        X509Certificate2Collection trustBundle)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(expectedServerIds);
        ArgumentNullException.ThrowIfNull(trustBundle);
        if (expectedServerIds.Count == 0)
        {
            throw new ArgumentException("at least one expected server identity is required", nameof(expectedServerIds));
        }

        return new SslClientAuthenticationOptions
        {
            // Empty: the peer is named by its SPIFFE id, not a host name, so no SNI is sent. It also keeps .NET's
            // client session cache (keyed on the target host) out of play, so every handshake re-runs the SAN
            // check against this connection's expected ids.
            TargetHost = string.Empty,
            EnabledSslProtocols = SslProtocols.Tls13,
            ApplicationProtocols = [Alpn],
            ClientCertificateContext = source.Context,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (sender, certificate, chain, _) =>
                Accept(sender, certificate, chain, trustBundle, requiredTrustDomain: null, expectedServerIds),
        };
    }

    /// <summary>
    /// Server options: present <paramref name="server"/>'s certificate, require a client certificate whose chain
    /// ends in <paramref name="trustBundle"/> and whose URI SAN is a SPIFFE id in <paramref name="trustDomain"/>.
    /// </summary>
    public static SslServerAuthenticationOptions ServerOptions(
        WorkloadCertificate server,
        X509Certificate2Collection trustBundle,
        string trustDomain)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(trustBundle);
        ArgumentException.ThrowIfNullOrEmpty(trustDomain);
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = server.Context,
            ClientCertificateRequired = true,
            EnabledSslProtocols = SslProtocols.Tls13,
            ApplicationProtocols = [Alpn],
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (sender, certificate, chain, _) =>
                Accept(sender, certificate, chain, trustBundle, trustDomain, expectedIds: null),
        };
    }

    /// <summary>
    /// Validates a peer certificate (chain to the bundle, validity, SPIFFE URI SAN). On success gives the peer id;
    /// on failure a reason fit for an access log.
    /// </summary>
    public static bool TryValidatePeer(
        X509Certificate? certificate,
        X509Certificate2Collection trustBundle,
        string? requiredTrustDomain,
        [NotNullWhen(true)] out SpiffeId? peer,
        [NotNullWhen(false)] out string? error) =>
        PeerValidator.TryValidate(certificate, extraCertificates: null, trustBundle, requiredTrustDomain, out peer, out error);

    /// <summary>The SPIFFE id in the peer certificate of an authenticated stream.</summary>
    public static SpiffeId? PeerId(SslStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.RemoteCertificate is not { } remote)
        {
            return null;
        }

        X509Certificate2 certificate = remote as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(remote.GetRawCertData());
        return SpiffeSan.TryRead(certificate, out SpiffeId id, out _) ? id : null;
    }

    /// <summary>Why the handshake on <paramref name="stream"/> refused the peer's certificate, if it did.</summary>
    public static string? RejectionReason(SslStream stream) =>
        Rejections.TryGetValue(stream, out string? reason) ? reason : null;

    /// <summary>
    /// SslStream's own policy errors are ignored on purpose: it checks a DNS name we never use and trusts the system
    /// roots, not the mesh bundle. Our check replaces it entirely.
    /// </summary>
    private static bool Accept(
        object sender,
        X509Certificate? certificate,
        X509Chain? chain,
        X509Certificate2Collection trustBundle,
        string? requiredTrustDomain,
        IReadOnlyList<string>? expectedIds)
    {
        // SslStream hands the certificates the peer sent after its leaf in the chain's extra store; intermediates
        // come from there.
        X509Certificate2Collection? sent = chain?.ChainPolicy.ExtraStore;
        if (!PeerValidator.TryValidate(certificate, sent, trustBundle, requiredTrustDomain, out SpiffeId? peer, out string? error))
        {
            Reject(sender, error);
            return false;
        }

        if (expectedIds is not null && !IsExpected(peer.Value, expectedIds))
        {
            Reject(sender, $"server identity {peer.Value} is not the expected {string.Join(" or ", expectedIds)}");
            return false;
        }

        return true;
    }

    private static bool IsExpected(SpiffeId peer, IReadOnlyList<string> expectedIds)
    {
        string actual = peer.ToString();
        for (int i = 0; i < expectedIds.Count; i++)
        {
            if (string.Equals(expectedIds[i], actual, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static void Reject(object sender, string reason)
    {
        if (sender is SslStream stream)
        {
            Rejections.AddOrUpdate(stream, reason);
        }
    }
}
