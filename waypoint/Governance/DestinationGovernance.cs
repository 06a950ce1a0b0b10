using Ambient.Mesh.Governance;
using Ambient.Mesh.Model.L7;
using Ambient.Waypoint.Routing;

namespace Ambient.Waypoint.Governance;

/// <summary>
/// The shared state of one destination (a service, or one DestinationRule subset of it): its circuit breaker, the
/// outlier detector over its endpoints (by workload uid), and its retry budget. Built from the DestinationRule's
/// policy in force and replaced only when that policy changes, so counts survive unrelated config pushes.
/// </summary>
internal sealed class DestinationGovernance
{
    private readonly SemaphoreSlim? _connections;

    public DestinationGovernance(Backend backend, TrafficPolicy? policy, TimeProvider time)
    {
        Backend = backend;
        Service = backend.Service.Hostname;
        Subset = backend.Subset;
        Policy = policy;
        Breaker = new CircuitBreaker(policy?.ConnectionPool);
        long maxConnections = Breaker.Connections.Limit;
        // Only a limit someone set needs a semaphore; the default (2^32-1) never waits.
        _connections = maxConnections < CircuitBreaker.Unlimited ? new SemaphoreSlim((int)Math.Min(maxConnections, int.MaxValue)) : null;
        if (policy?.OutlierDetection is { } od)
        {
            Outliers = new OutlierDetector<string>(od, time);
            NextSweep = time.GetUtcNow() + od.EffectiveInterval;
        }
        if (policy?.RetryBudget is { } budget)
        {
            Budget = new RetryBudgetGate(budget);
        }
    }

    public Backend Backend { get; }

    /// <summary>The service hostname (the metrics label).</summary>
    public string Service { get; }

    public string? Subset { get; }

    public TrafficPolicy? Policy { get; }

    public CircuitBreaker Breaker { get; }

    /// <summary>Null unless the DestinationRule sets <c>outlierDetection</c> (Istio ejects nothing by default).</summary>
    public OutlierDetector<string>? Outliers { get; }

    public RetryBudgetGate? Budget { get; }

    /// <summary>When the outlier detector sweeps next (its <c>interval</c>).</summary>
    public DateTimeOffset NextSweep { get; set; }

    /// <summary>HTTP/1.1 connections still free (<c>tcp.maxConnections</c> minus requests holding one).</summary>
    public long ConnectionsRemaining => _connections is { } s ? s.CurrentCount : CircuitBreaker.Unlimited;

    /// <summary>
    /// Admits one request or refuses it at once (503, flag UO), as Envoy's breakers do: a request slot
    /// (<c>http2MaxRequests</c>); an HTTP/1.1 request also needs a connection (<c>tcp.maxConnections</c>, one
    /// request per connection), and may wait for one only while fewer than <c>http1MaxPendingRequests</c> wait.
    /// </summary>
    /// <returns>The admission to dispose when the request ends, or null when a limit is full.</returns>
    public async ValueTask<Admission?> AdmitAsync(bool http1, CancellationToken cancellationToken)
    {
        if (!Breaker.Requests.TryAcquire())
        {
            return null;
        }
        if (!http1 || _connections is null)
        {
            return new Admission(this, connection: false);
        }
        if (_connections.Wait(0, CancellationToken.None))
        {
            return new Admission(this, connection: true);
        }
        if (!Breaker.Pending.TryAcquire())
        {
            Breaker.Requests.Release();
            return null;
        }
        try
        {
            await _connections.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Breaker.Requests.Release();
            throw;
        }
        finally
        {
            Breaker.Pending.Release();
        }
        return new Admission(this, connection: true);
    }

    /// <summary>Takes a retry slot: the retry budget when one is set, else <c>http.maxRetries</c>.</summary>
    public bool TryStartRetry() => Budget is { } b ? b.TryStartRetry() : Breaker.Retries.TryAcquire();

    public void RetryEnded()
    {
        if (Budget is { } b)
        {
            b.RetryEnded();
        }
        else
        {
            Breaker.Retries.Release();
        }
    }

    /// <summary>A request admitted by <see cref="AdmitAsync"/>; disposing gives its slots back (once).</summary>
    internal sealed class Admission : IDisposable
    {
        private DestinationGovernance? _owner;
        private readonly bool _connection;

        public Admission(DestinationGovernance owner, bool connection)
        {
            _owner = owner;
            _connection = connection;
            owner.Budget?.RequestStarted();
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _owner, null) is not { } owner)
            {
                return;
            }
            owner.Budget?.RequestEnded();
            if (_connection)
            {
                owner._connections!.Release();
            }
            owner.Breaker.Requests.Release();
        }
    }
}
