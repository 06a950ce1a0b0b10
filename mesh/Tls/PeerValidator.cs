using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.Identity;

namespace Ambient.Mesh.Tls;

/// <summary>
/// Checks a peer certificate against the mesh trust bundle and reads its SPIFFE id. Successful chain builds are
/// remembered for a short while per (bundle, certificate): a busy pair of nodes opens many connections with the same
/// certificate, and the chain verdict cannot change while the bundle and the certificate's validity don't.
/// </summary>
internal static class PeerValidator
{
    /// <summary>How long a verified chain is trusted without rebuilding it.</summary>
    internal static readonly TimeSpan CacheLifetime = TimeSpan.FromSeconds(60);

    // Bounds memory against a peer cycling through certificates; clearing wholesale is fine for a cache.
    private const int MaxCacheEntries = 10_000;

    // Keyed by the bundle instance: a new bundle (root rotation) is a new collection and starts with an empty cache.
    // Bundles are therefore treated as immutable; swap in a new collection rather than editing one in place.
    private static readonly ConditionalWeakTable<X509Certificate2Collection, ConcurrentDictionary<CertificateHash, DateTime>> Caches = new();

    public static bool TryValidate(
        X509Certificate? certificate,
        X509Certificate2Collection? extraCertificates,
        X509Certificate2Collection trustBundle,
        string? requiredTrustDomain,
        [NotNullWhen(true)] out SpiffeId? peer,
        [NotNullWhen(false)] out string? error)
    {
        peer = null;
        if (certificate is null)
        {
            error = "peer presented no certificate";
            return false;
        }

        X509Certificate2 leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        if (!SpiffeSan.TryRead(leaf, out SpiffeId id, out error))
        {
            error = "peer certificate rejected: " + error;
            return false;
        }

        if (requiredTrustDomain is not null && !string.Equals(id.TrustDomain, requiredTrustDomain, StringComparison.Ordinal))
        {
            error = $"peer {id} is not in trust domain {requiredTrustDomain}";
            return false;
        }

        // Checked here, before the chain, so the log says "expired" rather than a chain status code.
        DateTime now = DateTime.UtcNow;
        DateTime notAfter = leaf.NotAfter.ToUniversalTime();
        if (now > notAfter)
        {
            error = $"peer certificate for {id} expired at {notAfter:u}";
            return false;
        }

        if (now < leaf.NotBefore.ToUniversalTime())
        {
            error = $"peer certificate for {id} is not valid before {leaf.NotBefore.ToUniversalTime():u}";
            return false;
        }

        if (IsCertificateAuthority(leaf))
        {
            error = $"peer certificate for {id} is a CA certificate, not a workload certificate";
            return false;
        }

        if (trustBundle.Count == 0)
        {
            error = "the trust bundle is empty";
            return false;
        }

        ConcurrentDictionary<CertificateHash, DateTime> cache = Caches.GetValue(trustBundle, static _ => new());
        CertificateHash hash = CertificateHash.Of(leaf);
        if (cache.TryGetValue(hash, out DateTime trustedUntil) && now < trustedUntil)
        {
            peer = id;
            return true;
        }

        if (!TryBuildChain(leaf, extraCertificates, trustBundle, out DateTime chainNotAfter, out string? chainError))
        {
            error = $"peer certificate for {id} does not chain to the trust bundle: {chainError}";
            return false;
        }

        if (cache.Count >= MaxCacheEntries)
        {
            cache.Clear();
        }

        DateTime until = now + CacheLifetime;
        cache[hash] = until < chainNotAfter ? until : chainNotAfter;
        peer = id;
        return true;
    }

    private static bool TryBuildChain(
        X509Certificate2 leaf,
        X509Certificate2Collection? extraCertificates,
        X509Certificate2Collection trustBundle,
        out DateTime chainNotAfter,
        [NotNullWhen(false)] out string? error)
    {
        using var chain = new X509Chain();
        X509ChainPolicy policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(trustBundle);
        if (extraCertificates is { Count: > 0 })
        {
            policy.ExtraStore.AddRange(extraCertificates);
        }

        // The mesh has no CRLs or OCSP, and the data path must never fetch anything (AIA) mid-handshake.
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        if (!chain.Build(leaf))
        {
            error = CertificateAuthority.DescribeChainStatus(chain);
            chainNotAfter = default;
            return false;
        }

        // The verdict holds only while every certificate in the chain is still valid.
        chainNotAfter = DateTime.MaxValue;
        foreach (X509ChainElement element in chain.ChainElements)
        {
            DateTime elementNotAfter = element.Certificate.NotAfter.ToUniversalTime();
            if (elementNotAfter < chainNotAfter)
            {
                chainNotAfter = elementNotAfter;
            }
        }

        error = null;
        return true;
    }

    private static bool IsCertificateAuthority(X509Certificate2 certificate)
    {
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension is X509BasicConstraintsExtension constraints)
            {
                return constraints.CertificateAuthority;
            }
        }

        return false;
    }

    /// <summary>SHA-256 of the DER encoding: the certificate's identity for caching.</summary>
    private readonly record struct CertificateHash(UInt128 High, UInt128 Low)
    {
        public static CertificateHash Of(X509Certificate2 certificate)
        {
            Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(certificate.RawDataMemory.Span, digest);
            return new CertificateHash(MemoryMarshal.Read<UInt128>(digest), MemoryMarshal.Read<UInt128>(digest[16..]));
        }
    }
}
