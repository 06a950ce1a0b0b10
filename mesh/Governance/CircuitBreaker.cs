using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Governance;

/// <summary>
/// Envoy's circuit breakers for one destination, set by DestinationRule <c>connectionPool</c>: connections
/// (<c>tcp.maxConnections</c>), requests waiting for a connection (<c>http.http1MaxPendingRequests</c>), requests
/// in flight (<c>http.http2MaxRequests</c>) and retries in flight (<c>http.maxRetries</c>). Unset limits (and 0, proto3's "unset") are
/// Istio's default, effectively unlimited (2^32-1), so nothing changes until a user sets one. A refused slot is
/// answered at once with 503 and response flag UO: the breaker fails fast instead of queueing.
/// </summary>
public sealed class CircuitBreaker
{
    /// <summary>Istio's default for every limit: 2^32-1, i.e. none.</summary>
    public const long Unlimited = uint.MaxValue;

    private readonly Slots _connections;
    private readonly Slots _pending;
    private readonly Slots _requests;
    private readonly Slots _retries;

    public CircuitBreaker(ConnectionPoolSettings? settings)
    {
        _connections = new Slots(settings?.Tcp?.EffectiveMaxConnections ?? Unlimited);
        _pending = new Slots(settings?.Http?.EffectiveMaxPendingRequests ?? Unlimited);
        _requests = new Slots(settings?.Http?.EffectiveMaxRequests ?? Unlimited);
        _retries = new Slots(settings?.Http?.EffectiveMaxRetries ?? Unlimited);
    }

    public Slots Connections => _connections;

    public Slots Pending => _pending;

    public Slots Requests => _requests;

    public Slots Retries => _retries;

    /// <summary>A bounded count of things in flight, taken and given back without a lock.</summary>
    public sealed class Slots
    {
        private long _used;

        internal Slots(long limit) => Limit = limit;

        public long Limit { get; }

        public long InUse => Interlocked.Read(ref _used);

        /// <summary>What is left before the breaker opens (Envoy's remaining_* gauges).</summary>
        public long Remaining => Math.Max(0, Limit - InUse);

        /// <summary>Takes a slot unless all are in use; every success must be paired with <see cref="Release"/>.</summary>
        public bool TryAcquire()
        {
            long used = Interlocked.Read(ref _used);
            while (true)
            {
                if (used >= Limit)
                {
                    return false;
                }

                long seen = Interlocked.CompareExchange(ref _used, used + 1, used);
                if (seen == used)
                {
                    return true;
                }

                used = seen;
            }
        }

        public void Release()
        {
            if (Interlocked.Decrement(ref _used) < 0)
            {
                throw new InvalidOperationException("circuit breaker slot released more often than taken");
            }
        }
    }
}
