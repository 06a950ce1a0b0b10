using System.Collections.Immutable;

namespace Ambient.Mesh.Model.L7;

/// <summary>
/// An Istio DestinationRule (networking.istio.io v1; v1beta1 and v1alpha3 read the same): what happens to traffic
/// for <see cref="Host"/> after routing chose it — load balancing, connection limits (circuit breaking), outlier
/// ejection, upstream TLS — and the named subsets routes can pick.
/// </summary>
public sealed record DestinationRule : MeshObject
{
    public override string Kind => "DestinationRule";

    /// <summary>The service: a short name (relative to the rule's namespace), an FQDN, or "*.suffix".</summary>
    public required string Host { get; init; }

    public TrafficPolicy? TrafficPolicy { get; init; }

    public ImmutableArray<Subset> Subsets { get; init; } = [];

    /// <summary>Namespaces that see the rule ("." this one, "*" all); empty means the mesh default (all).</summary>
    public ImmutableArray<string> ExportTo { get; init; } = [];

    /// <summary>Labels of the client workloads the rule applies to; null applies to all.</summary>
    public ImmutableDictionary<string, string>? WorkloadSelector { get; init; }

    /// <summary>The subset called <paramref name="name"/>, or null.</summary>
    public Subset? FindSubset(string name)
    {
        foreach (Subset s in Subsets)
        {
            if (s.Name == name)
            {
                return s;
            }
        }
        return null;
    }

    /// <summary>
    /// The policy in force for traffic to <paramref name="port"/> of the host, optionally in a subset, resolved the
    /// way Istio resolves it: a port-level setting replaces the top level for that port (its omitted parts fall
    /// back to defaults, not to the top level); a subset's policy then overrides part by part (a subset's
    /// port-level setting replaces all four per-port parts). The result has no <see cref="TrafficPolicy.PortLevelSettings"/>.
    /// </summary>
    public TrafficPolicy? PolicyFor(int port, string? subset = null)
    {
        TrafficPolicy? merged = TrafficPolicy?.ForPort(port, out _);
        TrafficPolicy? sub = subset is null ? null : FindSubset(subset)?.TrafficPolicy;
        if (sub is null)
        {
            return merged;
        }
        TrafficPolicy subForPort = sub.ForPort(port, out bool portLevel);
        if (merged is null)
        {
            return subForPort;
        }
        return merged with
        {
            ConnectionPool = subForPort.ConnectionPool is not null || portLevel ? subForPort.ConnectionPool : merged.ConnectionPool,
            OutlierDetection = subForPort.OutlierDetection is not null || portLevel ? subForPort.OutlierDetection : merged.OutlierDetection,
            LoadBalancer = subForPort.LoadBalancer is not null || portLevel ? subForPort.LoadBalancer : merged.LoadBalancer,
            Tls = subForPort.Tls is not null || portLevel ? subForPort.Tls : merged.Tls,
            Tunnel = subForPort.Tunnel ?? merged.Tunnel,
            ProxyProtocol = subForPort.ProxyProtocol ?? merged.ProxyProtocol,
            RetryBudget = subForPort.RetryBudget ?? merged.RetryBudget,
        };
    }
}

/// <summary>A named group of the host's endpoints, chosen by pod labels, with an optional policy of its own.</summary>
public sealed record Subset(string Name, ImmutableDictionary<string, string> Labels, TrafficPolicy? TrafficPolicy);

public sealed record TrafficPolicy
{
    public LoadBalancerSettings? LoadBalancer { get; init; }

    public ConnectionPoolSettings? ConnectionPool { get; init; }

    public OutlierDetection? OutlierDetection { get; init; }

    public ClientTlsSettings? Tls { get; init; }

    /// <summary>Per-port overrides; each replaces the four per-port parts for its port.</summary>
    public ImmutableArray<PortTrafficPolicy> PortLevelSettings { get; init; } = [];

    public TunnelSettings? Tunnel { get; init; }

    public ProxyProtocolVersion? ProxyProtocol { get; init; }

    public RetryBudget? RetryBudget { get; init; }

    /// <summary>This policy for one port: the port-level setting's parts replace the top level's when one exists.</summary>
    public TrafficPolicy ForPort(int port, out bool portLevel)
    {
        foreach (PortTrafficPolicy p in PortLevelSettings)
        {
            if (p.Port == port)
            {
                portLevel = true;
                return this with
                {
                    LoadBalancer = p.LoadBalancer,
                    ConnectionPool = p.ConnectionPool,
                    OutlierDetection = p.OutlierDetection,
                    Tls = p.Tls,
                    PortLevelSettings = [],
                };
            }
        }
        portLevel = false;
        return PortLevelSettings.IsEmpty ? this : this with { PortLevelSettings = [] };
    }
}

public sealed record PortTrafficPolicy(
    int Port,
    LoadBalancerSettings? LoadBalancer,
    ConnectionPoolSettings? ConnectionPool,
    OutlierDetection? OutlierDetection,
    ClientTlsSettings? Tls);

public enum SimpleLoadBalancer
{
    /// <summary>Not chosen: Istio's default (LEAST_REQUEST).</summary>
    Unspecified,
    /// <summary>Deprecated spelling of LEAST_REQUEST.</summary>
    LeastConn,
    Random,
    /// <summary>Forward to the address the client dialled, no endpoint choice.</summary>
    Passthrough,
    RoundRobin,
    LeastRequest,
}

/// <summary>loadBalancer: exactly one of <see cref="Simple"/> and <see cref="ConsistentHash"/> (or neither).</summary>
public sealed record LoadBalancerSettings
{
    public SimpleLoadBalancer? Simple { get; init; }

    public ConsistentHashLb? ConsistentHash { get; init; }

    public LocalityLbSetting? LocalityLbSetting { get; init; }

    public ZoneAwareLbSetting? ZoneAwareLbSetting { get; init; }

    /// <summary><c>warmupDurationSecs</c> (older form of <see cref="Warmup"/>).</summary>
    public TimeSpan? WarmupDuration { get; init; }

    public WarmupConfiguration? Warmup { get; init; }

    /// <summary>
    /// The simple algorithm in force when no consistent hash is configured: LEAST_REQUEST unless the rule chose
    /// another (UNSPECIFIED and the deprecated LEAST_CONN both mean LEAST_REQUEST, as in Istio).
    /// </summary>
    public SimpleLoadBalancer EffectiveSimple => Simple switch
    {
        null or SimpleLoadBalancer.Unspecified or SimpleLoadBalancer.LeastConn => SimpleLoadBalancer.LeastRequest,
        SimpleLoadBalancer s => s,
    };
}

public enum HashKeyType
{
    HttpHeaderName,
    HttpCookie,
    UseSourceIp,
    HttpQueryParameterName,
}

/// <summary>consistentHash: sticky endpoint choice by one request attribute.</summary>
/// <param name="Key">Which attribute; <paramref name="KeyName"/> names the header or query parameter.</param>
/// <param name="RingHashMinimumRingSize">Set for ringHash (or the deprecated top-level minimumRingSize).</param>
/// <param name="MaglevTableSize">Set for maglev (a prime).</param>
public sealed record ConsistentHashLb(
    HashKeyType Key,
    string? KeyName,
    HttpCookieHashKey? Cookie,
    ulong? RingHashMinimumRingSize,
    ulong? MaglevTableSize)
{
    /// <summary>Istio's default hashing (ring hash) ring size.</summary>
    public const ulong DefaultMinimumRingSize = 1024;
}

/// <summary>A cookie hash key; with a TTL the proxy generates the cookie when the request lacks it.</summary>
public sealed record HttpCookieHashKey(string Name, string? Path, TimeSpan? Ttl, ImmutableArray<KeyValuePair<string, string?>> Attributes);

/// <summary>localityLbSetting: weighted distribution between localities, or failover order.</summary>
/// <param name="Enabled">Null: Istio's mesh default (enabled).</param>
public sealed record LocalityLbSetting(
    ImmutableArray<LocalityDistribute> Distribute,
    ImmutableArray<LocalityFailover> Failover,
    ImmutableArray<string> FailoverPriority,
    bool? Enabled);

/// <summary>Traffic from <paramref name="From"/> ("region/zone/subzone", trailing "*" allowed) split by weight (summing to 100).</summary>
public sealed record LocalityDistribute(string From, ImmutableDictionary<string, uint> To);

/// <summary>When <paramref name="From"/>'s endpoints are unhealthy, traffic fails over to region <paramref name="To"/>.</summary>
public sealed record LocalityFailover(string From, string To);

public sealed record ZoneAwareLbSetting(bool? Enabled, ImmutableArray<LocalityFailover> Failover, ImmutableArray<string> FailoverPriority, uint? MinClusterSize);

/// <summary>Slow start for new endpoints.</summary>
public sealed record WarmupConfiguration(TimeSpan Duration, double? MinimumPercent, double? Aggression);

/// <summary>connectionPool: limits per upstream host (Envoy circuit breakers).</summary>
public sealed record ConnectionPoolSettings(TcpSettings? Tcp, HttpSettings? Http)
{
    /// <summary>
    /// How long an idle upstream connection is kept: <c>http.idleTimeout</c>, else <c>tcp.idleTimeout</c> (where
    /// 0s disables it: null), else one hour, as Istio programs it.
    /// </summary>
    public TimeSpan? EffectiveIdleTimeout => Http?.IdleTimeout ?? Tcp?.IdleTimeout switch
    {
        null => TimeSpan.FromHours(1),
        { } t when t == TimeSpan.Zero => null,
        { } t => t,
    };
}

/// <summary>
/// TCP limits. Istio's fields are proto3 scalars where 0 means "unset", so the raw values are kept as written and
/// <c>Effective*</c> gives what is in force.
/// </summary>
public sealed record TcpSettings
{
    public int? MaxConnections { get; init; }

    public TimeSpan? ConnectTimeout { get; init; }

    public TcpKeepalive? TcpKeepalive { get; init; }

    public TimeSpan? MaxConnectionDuration { get; init; }

    /// <summary><see cref="TimeSpan.Zero"/> disables the idle timeout (see <see cref="ConnectionPoolSettings.EffectiveIdleTimeout"/>).</summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary>Connections per upstream host: effectively unlimited (2^32-1) unless set.</summary>
    public long EffectiveMaxConnections => MaxConnections is > 0 and int v ? v : uint.MaxValue;

    public TimeSpan EffectiveConnectTimeout => ConnectTimeout ?? TimeSpan.FromSeconds(10);
}

public sealed record TcpKeepalive(uint? Probes, TimeSpan? Time, TimeSpan? Interval);

public enum H2UpgradePolicy
{
    Default,
    DoNotUpgrade,
    Upgrade,
}

/// <summary>HTTP limits (HTTP/1.1 and HTTP/2 alike). Raw values as written; see <see cref="TcpSettings"/>.</summary>
public sealed record HttpSettings
{
    public int? Http1MaxPendingRequests { get; init; }

    public int? Http2MaxRequests { get; init; }

    public int? MaxRequestsPerConnection { get; init; }

    public int? MaxRetries { get; init; }

    public TimeSpan? IdleTimeout { get; init; }

    public H2UpgradePolicy H2UpgradePolicy { get; init; }

    public bool UseClientProtocol { get; init; }

    public int? MaxConcurrentStreams { get; init; }

    public Http2KeepAlive? Http2KeepAlive { get; init; }

    /// <summary>Requests waiting for a connection: effectively unlimited (2^32-1) unless set.</summary>
    public long EffectiveMaxPendingRequests => Http1MaxPendingRequests is > 0 and int v ? v : uint.MaxValue;

    /// <summary>Concurrent requests to a host: effectively unlimited (2^32-1) unless set.</summary>
    public long EffectiveMaxRequests => Http2MaxRequests is > 0 and int v ? v : uint.MaxValue;

    /// <summary>Concurrent retries to the whole host set: effectively unlimited (2^32-1) unless set.</summary>
    public long EffectiveMaxRetries => MaxRetries is > 0 and int v ? v : uint.MaxValue;

    /// <summary>0 = unlimited requests per connection (1 disables keep-alive).</summary>
    public int EffectiveMaxRequestsPerConnection => MaxRequestsPerConnection ?? 0;
}

public sealed record Http2KeepAlive(TimeSpan Interval, TimeSpan Timeout);

/// <summary>
/// outlierDetection: eject a host after consecutive errors. Raw values as written; <c>Effective*</c> gives the
/// values in force (Envoy's defaults as Istio programs them: 5 consecutive 5xx, gateway errors off, 10 s interval,
/// 30 s base ejection, at most 10% ejected, panic threshold 0%).
/// </summary>
public sealed record OutlierDetection
{
    public bool SplitExternalLocalOriginErrors { get; init; }

    public uint? ConsecutiveLocalOriginFailures { get; init; }

    public uint? ConsecutiveGatewayErrors { get; init; }

    public uint? Consecutive5xxErrors { get; init; }

    public TimeSpan? Interval { get; init; }

    public TimeSpan? BaseEjectionTime { get; init; }

    public int? MaxEjectionPercent { get; init; }

    public int? MinHealthPercent { get; init; }

    /// <summary>Statuses counted as errors (besides 5xx) for ejection; empty = none.</summary>
    public ImmutableArray<int> OutlierDetectionHttpErrorCodes { get; init; } = [];

    /// <summary>0 disables 5xx-based ejection.</summary>
    public uint EffectiveConsecutive5xxErrors => Consecutive5xxErrors ?? 5;

    /// <summary>0 (the default) disables gateway-error-based ejection.</summary>
    public uint EffectiveConsecutiveGatewayErrors => ConsecutiveGatewayErrors ?? 0;

    /// <summary>Only counted when <see cref="SplitExternalLocalOriginErrors"/>; 0 disables.</summary>
    public uint EffectiveConsecutiveLocalOriginFailures => SplitExternalLocalOriginErrors ? ConsecutiveLocalOriginFailures ?? 5 : 0;

    public TimeSpan EffectiveInterval => Interval ?? TimeSpan.FromSeconds(10);

    /// <summary>Ejection lasts this times the number of times the host was ejected.</summary>
    public TimeSpan EffectiveBaseEjectionTime => BaseEjectionTime ?? TimeSpan.FromSeconds(30);

    public int EffectiveMaxEjectionPercent => MaxEjectionPercent is > 0 and int v ? v : 10;

    /// <summary>Below this share of healthy hosts, load balancing ignores health (panic mode); 0 turns it off.</summary>
    public int EffectiveMinHealthPercent => MinHealthPercent ?? 0;
}

public enum ClientTlsMode
{
    Disable,
    Simple,
    Mutual,
    IstioMutual,
}

/// <summary>TLS to the upstream (file paths or a credentialName secret).</summary>
public sealed record ClientTlsSettings
{
    public ClientTlsMode Mode { get; init; }

    public string? ClientCertificate { get; init; }

    public string? PrivateKey { get; init; }

    public string? CaCertificates { get; init; }

    public string? CredentialName { get; init; }

    public ImmutableArray<string> SubjectAltNames { get; init; } = [];

    public string? Sni { get; init; }

    public bool? InsecureSkipVerify { get; init; }

    public string? CaCrl { get; init; }
}

/// <summary>Tunnel the traffic through a proxy with HTTP CONNECT (default) or POST.</summary>
public sealed record TunnelSettings(string Protocol, string TargetHost, int TargetPort);

public enum ProxyProtocolVersion
{
    V1,
    V2,
}

/// <summary>
/// retryBudget: retries may be at most <see cref="EffectivePercent"/> of active requests, but
/// <see cref="EffectiveMinRetryConcurrency"/> are always allowed.
/// </summary>
public sealed record RetryBudget(double? Percent, uint? MinRetryConcurrency, TimeSpan? BudgetInterval)
{
    public double EffectivePercent => Percent ?? 20;

    /// <summary>3 unless set above 0 (a proto3 scalar: 0 reads as unset).</summary>
    public uint EffectiveMinRetryConcurrency => MinRetryConcurrency is > 0 and uint v ? v : 3;

    /// <summary>Zero (the default): only active and pending requests count.</summary>
    public TimeSpan EffectiveBudgetInterval => BudgetInterval ?? TimeSpan.Zero;
}
