using System.Collections.Concurrent;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Governance;

/// <summary>Which limit refused a request (or none).</summary>
public enum RateLimitVerdict
{
    Allowed,

    /// <summary>The policy's <c>total.requestsPerSecond</c>, shared by every client.</summary>
    Total,

    /// <summary>The client's own bucket: <c>identity.requestsPerSecond</c> or the override that names it.</summary>
    Client,
}

/// <summary>
/// Enforces one HTTPLocalRateLimitPolicy in one proxy, with Linkerd's meaning: a total bucket shared by all
/// clients; a bucket per client identity (<c>identity.requestsPerSecond</c>); an override's rate is one bucket
/// shared by the ServiceAccounts it names; clients without an identity share one bucket. Each bucket holds one
/// second of its rate as burst. The limits are local: N waypoint replicas admit up to N times the rate.
/// </summary>
public sealed class LocalRateLimiter
{
    /// <summary>Per-identity buckets kept at most; past it, full buckets are dropped, then newcomers share one.</summary>
    public const int DefaultMaxClients = 10_000;

    private readonly TimeProvider _time;
    private readonly TokenBucket? _total;
    private readonly TokenBucket?[] _overrides;
    private readonly ConcurrentDictionary<SpiffeId, TokenBucket> _clients = new();
    private readonly TokenBucket? _anonymous;
    private readonly TokenBucket? _overflow;
    private readonly int _maxClients;

    public LocalRateLimiter(HttpLocalRateLimitPolicy policy, TimeProvider time, int maxClients = DefaultMaxClients)
    {
        Policy = policy;
        _time = time;
        _maxClients = maxClients;
        _total = Bucket(policy.TotalRequestsPerSecond);
        _overrides = new TokenBucket?[policy.Overrides.Length];
        for (int i = 0; i < _overrides.Length; i++)
        {
            _overrides[i] = Bucket(policy.Overrides[i].RequestsPerSecond);
        }

        _anonymous = Bucket(policy.IdentityRequestsPerSecond);
        _overflow = Bucket(policy.IdentityRequestsPerSecond);
    }

    public HttpLocalRateLimitPolicy Policy { get; }

    /// <summary>Per-identity buckets held now (for tests and /config_dump).</summary>
    public int TrackedClients => _clients.Count;

    /// <summary>Takes a token from every limit that applies to <paramref name="client"/>; null = no identity.</summary>
    public RateLimitVerdict TryAcquire(SpiffeId? client)
    {
        TokenBucket? own = ClientBucket(client);
        if (own is not null && !own.TryTake())
        {
            return RateLimitVerdict.Client;
        }

        if (_total is not null && !_total.TryTake())
        {
            // The client's token was not spent on a request that went through: give it back.
            own?.Refund();
            return RateLimitVerdict.Total;
        }

        return RateLimitVerdict.Allowed;
    }

    private TokenBucket? ClientBucket(SpiffeId? client)
    {
        if (client is not { } id)
        {
            return _anonymous;
        }

        for (int i = 0; i < _overrides.Length; i++)
        {
            foreach (RateLimitClientRef r in Policy.Overrides[i].ClientRefs)
            {
                if (r.Name == id.ServiceAccount && (r.Namespace ?? Policy.Namespace) == id.Namespace)
                {
                    return _overrides[i];
                }
            }
        }

        if (Policy.IdentityRequestsPerSecond is not { } rate)
        {
            return null;
        }

        if (_clients.TryGetValue(id, out TokenBucket? bucket))
        {
            return bucket;
        }

        if (_clients.Count >= _maxClients && !DropFullBuckets())
        {
            return _overflow;
        }

        return _clients.GetOrAdd(id, static (_, s) => new TokenBucket(s.rate, s.rate, s.time), (rate: (double)rate, time: _time));
    }

    /// <summary>A full bucket is the same as a new one, so dropping it changes no decision.</summary>
    private bool DropFullBuckets()
    {
        foreach (KeyValuePair<SpiffeId, TokenBucket> entry in _clients)
        {
            if (entry.Value.IsIdle(TimeSpan.Zero))
            {
                _clients.TryRemove(entry);
            }
        }

        return _clients.Count < _maxClients;
    }

    // A rate of 0 is refused by the parser; TokenBucket throws on it rather than treating it as "no limit".
    private TokenBucket? Bucket(uint? rate) => rate is { } r ? new TokenBucket(r, r, _time) : null;
}
