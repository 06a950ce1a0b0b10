namespace Ambient.Mesh.Governance;

/// <summary>
/// A token bucket refilled continuously at <see cref="Rate"/> tokens per second up to <see cref="Capacity"/>, read
/// from a <see cref="TimeProvider"/> so tests drive it with a fake clock. Hand-written rather than
/// System.Threading.RateLimiting's TokenBucketRateLimiter: that one refills in whole periods from its own timer and
/// takes no TimeProvider, so neither the refill nor a test of it can be exact.
/// </summary>
public sealed class TokenBucket
{
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly double _tokensPerTimestamp;
    private double _tokens;
    private long _refilledAt;
    private long _lastUsed;

    /// <param name="tokensPerSecond">Refill rate; must be positive.</param>
    /// <param name="capacity">Most tokens held (the burst a quiet client may spend at once); at least 1.</param>
    public TokenBucket(double tokensPerSecond, double capacity, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokensPerSecond);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _time = time;
        Rate = tokensPerSecond;
        Capacity = capacity;
        _tokensPerTimestamp = tokensPerSecond / time.TimestampFrequency;
        _tokens = capacity;
        _refilledAt = _lastUsed = time.GetTimestamp();
    }

    public double Rate { get; }

    public double Capacity { get; }

    /// <summary>Timestamp (of the bucket's TimeProvider) of the last <see cref="TryTake"/>.</summary>
    public long LastUsed => Volatile.Read(ref _lastUsed);

    /// <summary>Tokens available now (for gauges and tests).</summary>
    public double Available
    {
        get
        {
            lock (_gate)
            {
                Refill(_time.GetTimestamp());
                return _tokens;
            }
        }
    }

    /// <summary>Takes one token if one is there.</summary>
    public bool TryTake()
    {
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            Refill(now);
            _lastUsed = now;
            if (_tokens < 1)
            {
                return false;
            }

            _tokens -= 1;
            return true;
        }
    }

    /// <summary>Gives back a token taken by a request that another limit then refused.</summary>
    public void Refund()
    {
        lock (_gate)
        {
            _tokens = Math.Min(Capacity, _tokens + 1);
        }
    }

    /// <summary>True when the bucket is full and unused for <paramref name="idle"/>: dropping it changes nothing.</summary>
    public bool IsIdle(TimeSpan idle)
    {
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            Refill(now);
            return _tokens >= Capacity && _time.GetElapsedTime(_lastUsed, now) >= idle;
        }
    }

    private void Refill(long now)
    {
        long elapsed = now - _refilledAt;
        if (elapsed <= 0)
        {
            return;
        }

        _tokens = Math.Min(Capacity, _tokens + (elapsed * _tokensPerTimestamp));
        _refilledAt = now;
    }
}
