using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Governance;

/// <summary>How one attempt at an upstream host ended, as outlier detection counts it.</summary>
public enum UpstreamOutcome
{
    /// <summary>A response arrived; its status decides.</summary>
    Response,

    /// <summary>A local-origin failure: connect refused or timed out, reset before a response.</summary>
    LocalFailure,
}

/// <summary>
/// Passive health checking with Envoy's consecutive-error ejection, for the hosts of one destination (a service or
/// a DestinationRule subset). Errors are counted inline and eject at once: <c>consecutive5xxErrors</c> counts 5xx
/// (and the configured extra codes), <c>consecutiveGatewayErrors</c> 502/503/504; a local-origin failure counts as
/// both unless <c>splitExternalLocalOriginErrors</c> gives it its own counter. A host is ejected only while fewer
/// than <c>maxEjectionPercent</c> of the hosts are (so one host can always go), for the base ejection time times
/// the number of times it was ejected (capped at 300 s, Envoy's max_ejection_time), and comes back at the first
/// sweep after that; each sweep it spends healthy lowers that multiplier by one. Below <c>minHealthPercent</c>
/// healthy hosts, <see cref="Select"/> ignores ejections (Envoy's panic mode).
/// </summary>
public sealed class OutlierDetector<THost> where THost : notnull
{
    /// <summary>Envoy's default max_ejection_time: the cap on one ejection however often the host was ejected.</summary>
    public static readonly TimeSpan MaxEjectionTime = TimeSpan.FromSeconds(300);

    private readonly OutlierDetection _settings;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<THost, HostState> _hosts = [];
    private int _ejected;
    private long _ejectionsTotal;

    public OutlierDetector(OutlierDetection settings, TimeProvider time)
    {
        _settings = settings;
        _time = time;
    }

    /// <summary>Raised (outside the lock) when a host is ejected, with how long it stays out.</summary>
    public event Action<THost, TimeSpan>? Ejected;

    /// <summary>Raised (outside the lock) when an ejected host returns.</summary>
    public event Action<THost>? Returned;

    public OutlierDetection Settings => _settings;

    /// <summary>Ejections since start (a counter for metrics).</summary>
    public long EjectionsTotal => Interlocked.Read(ref _ejectionsTotal);

    /// <summary>Hosts ejected now (a gauge for metrics).</summary>
    public int EjectedCount
    {
        get
        {
            lock (_gate)
            {
                return _ejected;
            }
        }
    }

    /// <summary>The hosts of the destination now: state of hosts gone is dropped, new ones start healthy.</summary>
    public void SetHosts(IEnumerable<THost> hosts)
    {
        lock (_gate)
        {
            HashSet<THost> current = [.. hosts];
            foreach (THost known in _hosts.Keys.ToArray())
            {
                if (!current.Contains(known))
                {
                    if (_hosts[known].EjectedUntil is not null)
                    {
                        _ejected--;
                    }

                    _hosts.Remove(known);
                }
            }

            foreach (THost host in current)
            {
                _hosts.TryAdd(host, new HostState());
            }
        }
    }

    public bool IsEjected(THost host)
    {
        lock (_gate)
        {
            return _hosts.TryGetValue(host, out HostState? s) && s.EjectedUntil is not null;
        }
    }

    /// <summary>Counts one attempt's result; may eject the host.</summary>
    public void Report(THost host, UpstreamOutcome outcome, int status = 0)
    {
        TimeSpan? ejectedFor = null;
        lock (_gate)
        {
            if (!_hosts.TryGetValue(host, out HostState? s))
            {
                return;
            }

            bool local = outcome == UpstreamOutcome.LocalFailure;
            bool split = _settings.SplitExternalLocalOriginErrors;
            bool is5xx = !local && (status >= 500 || _settings.OutlierDetectionHttpErrorCodes.Contains(status));
            bool isGateway = !local && status is 502 or 503 or 504;
            if (local && !split)
            {
                // Without the split, a local-origin failure is what the proxy would answer 503 for: a 5xx and a
                // gateway error both.
                is5xx = isGateway = true;
            }

            s.Consecutive5xx = is5xx ? s.Consecutive5xx + 1 : 0;
            s.ConsecutiveGateway = isGateway ? s.ConsecutiveGateway + 1 : 0;
            if (split)
            {
                s.ConsecutiveLocal = local ? s.ConsecutiveLocal + 1 : 0;
            }

            if (s.EjectedUntil is null && Tripped(s))
            {
                ejectedFor = TryEject(s);
            }
        }

        if (ejectedFor is { } d)
        {
            Ejected?.Invoke(host, d);
        }
    }

    /// <summary>
    /// The ejection sweep, run every <c>interval</c>: hosts whose ejection ran out return; a healthy host's
    /// ejection multiplier goes down by one.
    /// </summary>
    public void Sweep()
    {
        List<THost>? returned = null;
        DateTimeOffset now = _time.GetUtcNow();
        lock (_gate)
        {
            foreach ((THost host, HostState s) in _hosts)
            {
                if (s.EjectedUntil is { } until)
                {
                    if (now >= until)
                    {
                        s.EjectedUntil = null;
                        s.Consecutive5xx = s.ConsecutiveGateway = s.ConsecutiveLocal = 0;
                        _ejected--;
                        (returned ??= []).Add(host);
                    }
                }
                else if (s.Multiplier > 0)
                {
                    s.Multiplier--;
                }
            }
        }

        if (returned is not null)
        {
            foreach (THost host in returned)
            {
                Returned?.Invoke(host);
            }
        }
    }

    /// <summary>
    /// The hosts to balance over: those not ejected, or all of them when fewer than <c>minHealthPercent</c> are
    /// healthy (panic). May be empty when every host is ejected and there is no panic threshold.
    /// </summary>
    public IReadOnlyList<THost> Select(IReadOnlyList<THost> hosts)
    {
        lock (_gate)
        {
            if (_ejected == 0)
            {
                return hosts;
            }

            List<THost> healthy = new(hosts.Count);
            foreach (THost host in hosts)
            {
                if (!_hosts.TryGetValue(host, out HostState? s) || s.EjectedUntil is null)
                {
                    healthy.Add(host);
                }
            }

            int minHealthy = _settings.EffectiveMinHealthPercent;
            bool panic = minHealthy > 0 && hosts.Count > 0 && healthy.Count * 100 < minHealthy * hosts.Count;
            return panic ? hosts : healthy;
        }
    }

    private bool Tripped(HostState s)
    {
        uint n5xx = _settings.EffectiveConsecutive5xxErrors;
        uint gateway = _settings.EffectiveConsecutiveGatewayErrors;
        uint local = _settings.EffectiveConsecutiveLocalOriginFailures;
        return (n5xx > 0 && s.Consecutive5xx >= n5xx)
            || (gateway > 0 && s.ConsecutiveGateway >= gateway)
            || (local > 0 && s.ConsecutiveLocal >= local);
    }

    private TimeSpan? TryEject(HostState s)
    {
        // Envoy's check: eject while the hosts already out are under the percentage; with none out, one always goes.
        if (_ejected * 100 >= _settings.EffectiveMaxEjectionPercent * _hosts.Count)
        {
            return null;
        }

        s.Multiplier++;
        TimeSpan baseTime = _settings.EffectiveBaseEjectionTime;
        TimeSpan cap = baseTime > MaxEjectionTime ? baseTime : MaxEjectionTime;
        TimeSpan duration = baseTime * s.Multiplier;
        if (duration > cap)
        {
            duration = cap;
        }

        s.EjectedUntil = _time.GetUtcNow() + duration;
        _ejected++;
        Interlocked.Increment(ref _ejectionsTotal);
        return duration;
    }

    private sealed class HostState
    {
        public uint Consecutive5xx;
        public uint ConsecutiveGateway;
        public uint ConsecutiveLocal;
        public int Multiplier;
        public DateTimeOffset? EjectedUntil;
    }
}
