using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Ambient.Mesh.Identity;

/// <summary>A workload identity <c>spiffe://trust-domain/ns/NAMESPACE/sa/SERVICE_ACCOUNT</c>.</summary>
public readonly record struct SpiffeId(string TrustDomain, string Namespace, string ServiceAccount)
{
    private const string Scheme = "spiffe://";

    // SPIFFE-ID spec section 2: an id is at most 2048 bytes, a trust domain at most 255.
    private const int MaxIdLength = 2048;
    private const int MaxTrustDomainLength = 255;

    // A node sees few identities and names them on every connection (records, metrics labels, policy checks): the
    // strings are made once and shared, which also keeps them out of each open tunnel's memory. Bounded, in case
    // something feeds it unbounded input; past the bound strings are simply made each time.
    private const int MaxCached = 4096;
    private static readonly ConcurrentDictionary<SpiffeId, string> s_uris = new();
    private static readonly ConcurrentDictionary<SpiffeId, string> s_principals = new();

    public override string ToString() => Cached(s_uris, this, static id => $"{Scheme}{id.TrustDomain}/ns/{id.Namespace}/sa/{id.ServiceAccount}");

    /// <summary>The principal as Istio's policies name it: the id without <c>spiffe://</c>.</summary>
    public string Principal => Cached(s_principals, this, static id => $"{id.TrustDomain}/ns/{id.Namespace}/sa/{id.ServiceAccount}");

    private static string Cached(ConcurrentDictionary<SpiffeId, string> cache, SpiffeId id, Func<SpiffeId, string> make)
    {
        if (cache.TryGetValue(id, out string? s))
        {
            return s;
        }

        s = make(id);
        if (cache.Count < MaxCached)
        {
            cache.TryAdd(id, s);
        }

        return s;
    }

    /// <summary>
    /// Parses exactly the Istio form. Stricter than a URI parser on purpose: the id is compared as a string by
    /// peers and policies, so two spellings of one identity (case, escapes, trailing slash, query) must not exist.
    /// </summary>
    public static bool TryParse(string? uri, [NotNullWhen(true)] out SpiffeId? id)
    {
        id = null;
        // The scheme is matched case-sensitively: SPIFFE ids are lowercase by spec and peers compare them as strings.
        if (uri is null || uri.Length > MaxIdLength || !uri.StartsWith(Scheme, StringComparison.Ordinal))
        {
            return false;
        }

        ReadOnlySpan<char> rest = uri.AsSpan(Scheme.Length);
        Span<Range> parts = stackalloc Range[6];
        // Six slots so an extra segment (or trailing slash) shows up as a sixth part instead of merging into the fifth.
        if (rest.Split(parts, '/') != 5)
        {
            return false;
        }

        ReadOnlySpan<char> trustDomain = rest[parts[0]];
        ReadOnlySpan<char> ns = rest[parts[2]];
        ReadOnlySpan<char> sa = rest[parts[4]];
        if (!IsTrustDomain(trustDomain)
            || !rest[parts[1]].SequenceEqual("ns")
            || !rest[parts[3]].SequenceEqual("sa")
            || !IsPathSegment(ns)
            || !IsPathSegment(sa))
        {
            return false;
        }

        id = new SpiffeId(trustDomain.ToString(), ns.ToString(), sa.ToString());
        return true;
    }

    /// <summary>SPIFFE-ID spec 2.1: lowercase letters, digits, dots, dashes and underscores; no port, no userinfo.</summary>
    internal static bool IsTrustDomain(ReadOnlySpan<char> value)
    {
        if (value.IsEmpty || value.Length > MaxTrustDomainLength)
        {
            return false;
        }

        foreach (char c in value)
        {
            if (!(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>SPIFFE-ID spec 2.2: letters, digits, dots, dashes and underscores; "." and ".." are not segments.</summary>
    private static bool IsPathSegment(ReadOnlySpan<char> value)
    {
        if (value.IsEmpty || value.SequenceEqual(".") || value.SequenceEqual(".."))
        {
            return false;
        }

        foreach (char c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }
}
