using System.Collections.Immutable;
using Ambient.Mesh.Model.L7;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes.L7;

internal sealed partial class IstioParser
{
    private static readonly string[] DestinationRuleKeys = ["host", "trafficPolicy", "subsets", "exportTo", "workloadSelector"];
    private static readonly string[] SubsetKeys = ["name", "labels", "trafficPolicy"];
    private static readonly string[] TrafficPolicyKeys =
        ["loadBalancer", "connectionPool", "outlierDetection", "tls", "portLevelSettings", "tunnel", "proxyProtocol", "retryBudget"];
    private static readonly string[] PortPolicyKeys = ["port", "loadBalancer", "connectionPool", "outlierDetection", "tls"];
    private static readonly string[] LoadBalancerKeys =
        ["simple", "consistentHash", "localityLbSetting", "zoneAwareLbSetting", "warmupDurationSecs", "warmup"];
    private static readonly string[] ConsistentHashKeys =
        ["httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName", "ringHash", "maglev", "minimumRingSize"];
    private static readonly string[] CookieKeys = ["name", "path", "ttl", "attributes"];
    private static readonly string[] LocalityKeys = ["distribute", "failover", "failoverPriority", "enabled"];
    private static readonly string[] ZoneAwareKeys = ["enabled", "failover", "failoverPriority", "minClusterSize"];
    private static readonly string[] WarmupKeys = ["duration", "minimumPercent", "aggression"];
    private static readonly string[] ConnectionPoolKeys = ["tcp", "http"];
    private static readonly string[] TcpKeys = ["maxConnections", "connectTimeout", "tcpKeepalive", "maxConnectionDuration", "idleTimeout"];
    private static readonly string[] KeepaliveKeys = ["probes", "time", "interval"];
    private static readonly string[] HttpPoolKeys =
    [
        "http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection", "maxRetries", "idleTimeout",
        "h2UpgradePolicy", "useClientProtocol", "maxConcurrentStreams", "http2KeepAlive",
    ];
    private static readonly string[] OutlierKeys =
    [
        "splitExternalLocalOriginErrors", "consecutiveLocalOriginFailures", "consecutiveGatewayErrors", "consecutive5xxErrors",
        "interval", "baseEjectionTime", "maxEjectionPercent", "minHealthPercent", "consecutiveErrors", "outlierDetectionHttpErrorCodes",
    ];
    private static readonly string[] TlsKeys =
        ["mode", "clientCertificate", "privateKey", "caCertificates", "credentialName", "subjectAltNames", "sni", "insecureSkipVerify", "caCrl"];
    private static readonly string[] TunnelKeys = ["protocol", "targetHost", "targetPort"];
    private static readonly string[] RetryBudgetKeys = ["percent", "minRetryConcurrency", "budgetInterval"];

    private static readonly (string, SimpleLoadBalancer)[] SimpleLbs =
    [
        ("UNSPECIFIED", SimpleLoadBalancer.Unspecified), ("LEAST_CONN", SimpleLoadBalancer.LeastConn),
        ("RANDOM", SimpleLoadBalancer.Random), ("PASSTHROUGH", SimpleLoadBalancer.Passthrough),
        ("ROUND_ROBIN", SimpleLoadBalancer.RoundRobin), ("LEAST_REQUEST", SimpleLoadBalancer.LeastRequest),
    ];

    private static readonly (string, H2UpgradePolicy)[] H2Policies =
        [("DEFAULT", H2UpgradePolicy.Default), ("DO_NOT_UPGRADE", H2UpgradePolicy.DoNotUpgrade), ("UPGRADE", H2UpgradePolicy.Upgrade)];

    private static readonly (string, ClientTlsMode)[] TlsModes =
    [
        ("DISABLE", ClientTlsMode.Disable), ("SIMPLE", ClientTlsMode.Simple), ("MUTUAL", ClientTlsMode.Mutual),
        ("ISTIO_MUTUAL", ClientTlsMode.IstioMutual),
    ];

    private static readonly string[] TopologyLabels = ["topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"];

    public DestinationRule? DestinationRule(YamlNode spec, string path, string ns, string name)
    {
        string? host = null;
        TrafficPolicy? policy = null;
        ImmutableArray<Subset> subsets = [];
        YamlNode? exportNode = null;
        ImmutableDictionary<string, string>? selector = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(spec, path))
        {
            switch (key)
            {
                case "host":
                    host = Host(v, p);
                    break;
                case "trafficPolicy":
                    policy = TrafficPolicy(v, p);
                    break;
                case "subsets":
                    var names = new HashSet<string>(StringComparer.Ordinal);
                    subsets = s.List(v, p, int.MaxValue, (n, ip) =>
                    {
                        Subset? subset = Subset(n, ip);
                        if (subset is not null && !names.Add(subset.Name))
                        {
                            s.Error(n, Child(ip, "name"), $"duplicate subset name '{subset.Name}'");
                        }
                        return subset;
                    });
                    break;
                case "exportTo":
                    exportNode = v;
                    break;
                case "workloadSelector":
                    selector = WorkloadSelector(v, p);
                    break;
                default:
                    s.Unknown(k, path, DestinationRuleKeys);
                    break;
            }
        }
        ImmutableArray<string> exportTo = [];
        if (exportNode is not null)
        {
            string p = Child(path, "exportTo");
            exportTo = ExportTo(exportNode, p, ns, allowNone: false);
            // A rule for some clients only (workloadSelector) is visible to its own namespace only.
            if (selector is not null && exportTo.Any(e => e != "." && e != ns))
            {
                s.Error(exportNode, p, "a destination rule with a workload selector cannot be exported beyond its own namespace");
            }
        }
        if (!s.Require(spec, path, "host", "the service the rule applies to") || host is null)
        {
            return null;
        }
        return new DestinationRule
        {
            Namespace = ns,
            Name = name,
            Host = host,
            TrafficPolicy = policy,
            Subsets = subsets,
            ExportTo = exportTo,
            WorkloadSelector = selector,
        };
    }

    private Subset? Subset(YamlNode node, string path)
    {
        string? name = null;
        ImmutableDictionary<string, string> labels = ImmutableDictionary<string, string>.Empty;
        TrafficPolicy? policy = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "name":
                    name = SubsetName(v, p);
                    break;
                case "labels":
                    labels = Labels(v, p);
                    break;
                case "trafficPolicy":
                    policy = TrafficPolicy(v, p);
                    break;
                default:
                    s.Unknown(k, path, SubsetKeys);
                    break;
            }
        }
        return s.Require(node, path, "name", "the subset's name") && name is not null ? new Subset(name, labels, policy) : null;
    }

    private TrafficPolicy? TrafficPolicy(YamlNode node, string path)
    {
        var policy = new TrafficPolicy();
        YamlScalarNode? tunnelKey = null, proxyKey = null;
        int fields = 0;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            fields++;
            switch (key)
            {
                case "loadBalancer":
                    policy = policy with { LoadBalancer = LoadBalancer(v, p) };
                    break;
                case "connectionPool":
                    policy = policy with { ConnectionPool = ConnectionPool(v, p) };
                    break;
                case "outlierDetection":
                    policy = policy with { OutlierDetection = Outlier(v, p) };
                    break;
                case "tls":
                    policy = policy with { Tls = Tls(v, p) };
                    break;
                case "portLevelSettings":
                    ImmutableArray<PortTrafficPolicy> ports = s.List(v, p, 4096, PortPolicy);
                    var seen = new HashSet<int>();
                    for (int i = 0; i < ports.Length; i++)
                    {
                        if (!seen.Add(ports[i].Port))
                        {
                            s.Warning(v, Index(p, i), $"port {ports[i].Port} already has settings; only the first applies");
                        }
                    }
                    policy = policy with { PortLevelSettings = ports };
                    break;
                case "tunnel":
                    tunnelKey = k;
                    policy = policy with { Tunnel = Tunnel(v, p) };
                    break;
                case "proxyProtocol":
                    proxyKey = k;
                    ProxyProtocolVersion version = ProxyProtocolVersion.V1;
                    s.OnlyField(v, p, "version", (pv, pp) => version = s.Enum(pv, pp, [("V1", ProxyProtocolVersion.V1), ("V2", ProxyProtocolVersion.V2)]) ?? version);
                    policy = policy with { ProxyProtocol = version };
                    break;
                case "retryBudget":
                    policy = policy with { RetryBudget = RetryBudget(v, p) };
                    break;
                default:
                    s.Unknown(k, path, TrafficPolicyKeys);
                    break;
            }
        }
        if (fields == 0 && node is YamlMappingNode)
        {
            s.Error(node, path, "traffic policy must have at least one field");
        }
        if (tunnelKey is not null && proxyKey is not null)
        {
            s.Error(proxyKey, Child(path, "proxyProtocol"), "tunnel and proxyProtocol must not be set together");
        }
        return policy;
    }

    private PortTrafficPolicy? PortPolicy(YamlNode node, string path)
    {
        int? port = null;
        LoadBalancerSettings? lb = null;
        ConnectionPoolSettings? pool = null;
        OutlierDetection? outlier = null;
        ClientTlsSettings? tls = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "port":
                    port = PortSelector(v, p);
                    break;
                case "loadBalancer":
                    lb = LoadBalancer(v, p);
                    break;
                case "connectionPool":
                    pool = ConnectionPool(v, p);
                    break;
                case "outlierDetection":
                    outlier = Outlier(v, p);
                    break;
                case "tls":
                    tls = Tls(v, p);
                    break;
                default:
                    s.Unknown(k, path, PortPolicyKeys);
                    break;
            }
        }
        if (!SpecReader.Has(node, "loadBalancer") && !SpecReader.Has(node, "connectionPool")
            && !SpecReader.Has(node, "outlierDetection") && !SpecReader.Has(node, "tls"))
        {
            s.Error(node, path, "port traffic policy must have at least one of loadBalancer, connectionPool, outlierDetection, tls");
        }
        return s.Require(node, path, "port", "the port these settings are for") && port is int n
            ? new PortTrafficPolicy(n, lb, pool, outlier, tls)
            : null;
    }

    private LoadBalancerSettings? LoadBalancer(YamlNode node, string path)
    {
        var lb = new LoadBalancerSettings();
        YamlScalarNode? simpleKey = null, hashKey = null, warmupSecsKey = null, warmupKey = null, localityKey = null, zoneKey = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "simple":
                    simpleKey = k;
                    lb = lb with { Simple = s.Enum(v, p, SimpleLbs) };
                    if (lb.Simple == SimpleLoadBalancer.LeastConn)
                    {
                        s.Warning(v, p, "LEAST_CONN is deprecated; use LEAST_REQUEST");
                    }
                    break;
                case "consistentHash":
                    hashKey = k;
                    lb = lb with { ConsistentHash = ConsistentHash(v, p) };
                    break;
                case "localityLbSetting":
                    localityKey = k;
                    lb = lb with { LocalityLbSetting = Locality(v, p) };
                    break;
                case "zoneAwareLbSetting":
                    zoneKey = k;
                    lb = lb with { ZoneAwareLbSetting = ZoneAware(v, p) };
                    break;
                case "warmupDurationSecs":
                    warmupSecsKey = k;
                    lb = lb with { WarmupDuration = s.IstioDuration(v, p) };
                    break;
                case "warmup":
                    warmupKey = k;
                    lb = lb with { Warmup = Warmup(v, p) };
                    break;
                default:
                    s.Unknown(k, path, LoadBalancerKeys);
                    break;
            }
        }
        if (simpleKey is not null && hashKey is not null)
        {
            s.Error(hashKey, Child(path, "consistentHash"), "only one of simple and consistentHash can be set");
        }
        if (warmupSecsKey is not null && warmupKey is not null)
        {
            s.Error(warmupKey, Child(path, "warmup"), "only one of warmupDurationSecs and warmup can be set");
        }
        if (localityKey is not null && zoneKey is not null)
        {
            s.Error(zoneKey, Child(path, "zoneAwareLbSetting"), "only one of localityLbSetting and zoneAwareLbSetting can be set");
        }
        return lb;
    }

    private ConsistentHashLb? ConsistentHash(YamlNode node, string path)
    {
        var keys = new List<(HashKeyType Type, YamlScalarNode Key)>();
        string? keyName = null;
        HttpCookieHashKey? cookie = null;
        ulong? ringSize = null, tableSize = null;
        YamlScalarNode? algorithmKey = null, legacyRingKey = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "httpHeaderName":
                    keys.Add((HashKeyType.HttpHeaderName, k));
                    keyName = s.NonEmpty(v, p);
                    break;
                case "httpCookie":
                    keys.Add((HashKeyType.HttpCookie, k));
                    cookie = Cookie(v, p);
                    break;
                case "useSourceIp":
                    keys.Add((HashKeyType.UseSourceIp, k));
                    if (s.Bool(v, p) == false)
                    {
                        s.Error(v, p, "useSourceIp: false selects no hash key; remove it or choose another key");
                    }
                    break;
                case "httpQueryParameterName":
                    keys.Add((HashKeyType.HttpQueryParameterName, k));
                    keyName = s.NonEmpty(v, p);
                    break;
                case "ringHash":
                case "maglev":
                    if (algorithmKey is not null)
                    {
                        s.Error(k, p, "only one of ringHash and maglev can be set");
                    }
                    algorithmKey = k;
                    s.OnlyField(v, p, key == "ringHash" ? "minimumRingSize" : "tableSize", (av, ap) =>
                    {
                        ulong? size = s.Long(av, ap, 0, long.MaxValue) is long l ? (ulong)l : null;
                        if (key == "ringHash")
                        {
                            ringSize = size;
                        }
                        else
                        {
                            tableSize = MaglevTableSize(size, av, ap);
                        }
                    });
                    if (key == "maglev" && tableSize is null && !SpecReader.Has(v, "tableSize"))
                    {
                        s.Missing(v, p, "tableSize", "maglev needs a table size (a prime below 5000011, e.g. 65537)");
                    }
                    break;
                case "minimumRingSize":
                    legacyRingKey = k;
                    s.Warning(k, p, "consistentHash.minimumRingSize is deprecated; use ringHash.minimumRingSize");
                    ringSize = s.Long(v, p, 0, long.MaxValue) is long legacy ? (ulong)legacy : null;
                    break;
                default:
                    s.Unknown(k, path, ConsistentHashKeys);
                    break;
            }
        }
        if (legacyRingKey is not null && algorithmKey is not null)
        {
            s.Error(legacyRingKey, Child(path, "minimumRingSize"), "only one of minimumRingSize and ringHash/maglev can be specified");
        }
        if (keys.Count == 0)
        {
            s.Error(node, path, "one hash key is required: httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName");
            return null;
        }
        for (int i = 1; i < keys.Count; i++)
        {
            s.Error(keys[i].Key, Child(path, keys[i].Key.Value ?? ""), $"only one hash key can be set (already {keys[0].Key.Value})");
        }
        return new ConsistentHashLb(keys[0].Type, keyName, cookie, ringSize, tableSize);
    }

    private ulong? MaglevTableSize(ulong? size, YamlNode node, string path)
    {
        if (size is not ulong n)
        {
            return null;
        }
        if (n == 0 || n >= 5_000_011 || !IsPrime(n))
        {
            s.Error(node, path, $"{n}: the maglev table size must be a prime number below 5000011 (e.g. 65537)");
            return null;
        }
        return n;
    }

    // Envoy refuses a maglev table whose size is not prime.
    private static bool IsPrime(ulong x)
    {
        if (x < 4)
        {
            return x > 1;
        }
        if ((x & 1) == 0)
        {
            return false;
        }
        for (ulong f = 3; f * f <= x; f += 2)
        {
            if (x % f == 0)
            {
                return false;
            }
        }
        return true;
    }

    private HttpCookieHashKey? Cookie(YamlNode node, string path)
    {
        string? name = null, cookiePath = null;
        TimeSpan? ttl = null;
        ImmutableArray<KeyValuePair<string, string?>> attributes = [];
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "name":
                    name = s.NonEmpty(v, p);
                    break;
                case "path":
                    cookiePath = s.String(v, p);
                    break;
                case "ttl":
                    // 0s is a session cookie; the proto has no minimum here.
                    ttl = s.IstioDuration(v, p, allowZero: true);
                    break;
                case "attributes":
                    attributes = CookieAttributes(v, p);
                    break;
                default:
                    s.Unknown(k, path, CookieKeys);
                    break;
            }
        }
        return s.Require(node, path, "name", "the cookie name") && name is not null
            ? new HttpCookieHashKey(name, cookiePath, ttl, attributes)
            : null;
    }

    private ImmutableArray<KeyValuePair<string, string?>> CookieAttributes(YamlNode node, string path)
    {
        var b = ImmutableArray.CreateBuilder<KeyValuePair<string, string?>>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        YamlSequenceNode? seq = s.Errors.Sequence(node, path);
        for (int i = 0; seq is not null && i < seq.Children.Count; i++)
        {
            string ip = Index(path, i);
            string? name = null, value = null;
            foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(seq.Children[i], ip))
            {
                switch (key)
                {
                    case "name":
                        name = s.NonEmpty(v, p);
                        break;
                    case "value":
                        value = s.String(v, p);
                        break;
                    default:
                        s.Unknown(k, ip, ["name", "value"]);
                        break;
                }
            }
            if (!s.Require(seq.Children[i], ip, "name", "the attribute name") || name is null)
            {
                continue;
            }
            if (!names.Add(name))
            {
                s.Error(seq.Children[i], Child(ip, "name"), $"duplicate cookie attribute name '{name}'");
                continue;
            }
            b.Add(new KeyValuePair<string, string?>(name, value));
        }
        return b.ToImmutable();
    }

    private LocalityLbSetting? Locality(YamlNode node, string path)
    {
        ImmutableArray<LocalityDistribute> distribute = [];
        ImmutableArray<LocalityFailover> failover = [];
        ImmutableArray<string> priority = [];
        bool? enabled = null;
        YamlScalarNode? distributeKey = null, failoverKey = null, priorityKey = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "distribute":
                    distributeKey = k;
                    distribute = s.List(v, p, int.MaxValue, Distribute);
                    CheckLocalities(v, p, distribute.Select(d => d.From));
                    break;
                case "failover":
                    failoverKey = k;
                    failover = s.List(v, p, int.MaxValue, Failover);
                    break;
                case "failoverPriority":
                    priorityKey = k;
                    priority = s.Strings(v, p, check: PriorityLabel);
                    break;
                case "enabled":
                    enabled = s.Bool(v, p);
                    break;
                default:
                    s.Unknown(k, path, LocalityKeys);
                    break;
            }
        }
        if (distributeKey is not null && failoverKey is not null && !distribute.IsEmpty && !failover.IsEmpty)
        {
            s.Error(failoverKey, Child(path, "failover"), "cannot set both 'distribute' and 'failover'");
        }
        if (!failover.IsEmpty && priorityKey is not null)
        {
            foreach (string label in priority)
            {
                if (TopologyLabels.Contains(label))
                {
                    s.Error(priorityKey, Child(path, "failoverPriority"), $"cannot set both 'failover' and the topology label '{label}' in 'failoverPriority'");
                }
            }
        }
        return new LocalityLbSetting(distribute, failover, priority, enabled);
    }

    /// <summary>A failoverPriority entry: a label key, or "key=value" to match that value instead of the proxy's own.</summary>
    private string? PriorityLabel(YamlNode node, string path)
    {
        string? entry = s.String(node, path);
        if (entry is null)
        {
            return null;
        }
        int eq = entry.IndexOf('=', StringComparison.Ordinal);
        string key = eq < 0 ? entry : entry[..eq];
        if (key.Length == 0 || key.Any(char.IsWhiteSpace))
        {
            s.Error(node, path, $"'{entry}': a failover priority is a label key, or key=value");
            return null;
        }
        return entry;
    }

    private LocalityDistribute? Distribute(YamlNode node, string path)
    {
        string? from = null;
        ImmutableDictionary<string, uint> to = ImmutableDictionary<string, uint>.Empty;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "from":
                    from = LocalityName(v, p);
                    break;
                case "to":
                    var b = ImmutableDictionary.CreateBuilder<string, uint>(StringComparer.Ordinal);
                    long total = 0;
                    foreach ((YamlScalarNode tk, string loc, YamlNode tv, string tp) in s.Fields(v, p))
                    {
                        if (LocalityProblem(loc) is { } problem)
                        {
                            s.Error(tk, tp, problem);
                        }
                        if (s.Long(tv, tp, 1, 100) is long w)
                        {
                            b[loc] = (uint)w;
                            total += w;
                        }
                        else if (!IsNull(tv))
                        {
                            total = -1; // already reported; do not also report the sum
                        }
                    }
                    if (total >= 0 && total != 100)
                    {
                        s.Error(v, p, $"the locality weights add up to {total}; they must add up to 100");
                    }
                    to = b.ToImmutable();
                    break;
                default:
                    s.Unknown(k, path, ["from", "to"]);
                    break;
            }
        }
        return from is null ? null : new LocalityDistribute(from, to);
    }

    private LocalityFailover? Failover(YamlNode node, string path)
    {
        string? from = null, to = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "from":
                    from = Region(v, p);
                    break;
                case "to":
                    to = Region(v, p);
                    break;
                default:
                    s.Unknown(k, path, ["from", "to"]);
                    break;
            }
        }
        if (from is not null && from == to)
        {
            s.Error(node, path, $"failover must go to a different region (from and to are both '{from}')");
            return null;
        }
        return from is null || to is null ? null : new LocalityFailover(from, to);
    }

    private string? Region(YamlNode node, string path)
    {
        string? r = s.NonEmpty(node, path);
        if (r is not null && (r.Contains('/') || r.Contains('*')))
        {
            s.Error(node, path, $"'{r}': failover names a region only (no '/' or '*')");
            return null;
        }
        return r;
    }

    private string? LocalityName(YamlNode node, string path)
    {
        string? l = s.NonEmpty(node, path);
        if (l is not null && LocalityProblem(l) is { } problem)
        {
            s.Error(node, path, problem);
            return null;
        }
        return l;
    }

    /// <summary>A locality "region[/zone[/subzone]]", a single trailing "*" allowed; no empty parts.</summary>
    private static string? LocalityProblem(string locality)
    {
        int stars = locality.Count(c => c == '*');
        if (stars > 1 || (stars == 1 && !locality.EndsWith('*')))
        {
            return $"locality '{locality}': at most one '*', and only at the end";
        }
        string[] parts = locality.Split('/', 3);
        return Array.Exists(parts, p => p.Length == 0) ? $"locality '{locality}' must not have an empty region, zone or subzone" : null;
    }

    /// <summary>
    /// Two "from" localities must not overlap: a locality covers the ones below it ("us-east" and "us-east/*" cover
    /// "us-east/zone1"), and "*" covers all.
    /// </summary>
    private void CheckLocalities(YamlNode node, string path, IEnumerable<string> localities)
    {
        var seen = new List<string>();
        foreach (string l in localities)
        {
            string scope = Scope(l);
            foreach (string other in seen)
            {
                if (Covers(Scope(other), scope) || Covers(scope, Scope(other)))
                {
                    s.Error(node, path, $"locality '{l}' overlaps '{other}'");
                }
            }
            seen.Add(l);
        }

        static string Scope(string locality) => locality.EndsWith("/*", StringComparison.Ordinal) ? locality[..^2] : locality == "*" ? "" : locality;

        static bool Covers(string outer, string inner) =>
            outer.Length == 0 || inner == outer || inner.StartsWith(outer + "/", StringComparison.Ordinal);
    }

    private ZoneAwareLbSetting? ZoneAware(YamlNode node, string path)
    {
        bool? enabled = null;
        ImmutableArray<LocalityFailover> failover = [];
        ImmutableArray<string> priority = [];
        uint? minSize = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "enabled":
                    enabled = s.Bool(v, p);
                    break;
                case "failover":
                    failover = s.List(v, p, int.MaxValue, Failover);
                    break;
                case "failoverPriority":
                    priority = s.Strings(v, p, check: (pv, pp) =>
                    {
                        string? label = s.String(pv, pp);
                        if (label is not null && TopologyLabels.Contains(label))
                        {
                            s.Error(pv, pp, $"'{label}': region, zone and subzone are handled by zone-aware load balancing itself");
                            return null;
                        }
                        return label;
                    });
                    break;
                case "minClusterSize":
                    minSize = s.Long(v, p, 1, uint.MaxValue) is long m ? (uint)m : null;
                    break;
                default:
                    s.Unknown(k, path, ZoneAwareKeys);
                    break;
            }
        }
        return new ZoneAwareLbSetting(enabled, failover, priority, minSize);
    }

    private WarmupConfiguration? Warmup(YamlNode node, string path)
    {
        TimeSpan? duration = null;
        double? minimum = null, aggression = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "duration":
                    duration = s.IstioDuration(v, p);
                    break;
                case "minimumPercent":
                    minimum = s.Double(v, p, 0, 100);
                    break;
                case "aggression":
                    aggression = s.Double(v, p, 0, double.MaxValue);
                    if (aggression == 0)
                    {
                        s.Error(v, p, "aggression must be greater than 0");
                    }
                    break;
                default:
                    s.Unknown(k, path, WarmupKeys);
                    break;
            }
        }
        return s.Require(node, path, "duration", "how long a new endpoint warms up") && duration is { } d
            ? new WarmupConfiguration(d, minimum, aggression)
            : null;
    }

    private ConnectionPoolSettings? ConnectionPool(YamlNode node, string path)
    {
        TcpSettings? tcp = null;
        HttpSettings? http = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "tcp":
                    tcp = Tcp(v, p);
                    break;
                case "http":
                    http = HttpPool(v, p);
                    break;
                default:
                    s.Unknown(k, path, ConnectionPoolKeys);
                    break;
            }
        }
        if (tcp is null && http is null && node is YamlMappingNode)
        {
            s.Error(node, path, "connection pool must have at least one of tcp and http");
        }
        return new ConnectionPoolSettings(tcp, http);
    }

    /// <summary>An int32 count that must not be negative (Istio: "must be non-negative").</summary>
    private int? Count(YamlNode node, string path)
    {
        long? v = s.Long(node, path, long.MinValue, int.MaxValue);
        if (v < 0)
        {
            s.Error(node, path, $"{v} is negative; it must be 0 or more");
            return null;
        }
        return v is null ? null : (int)v;
    }

    private TcpSettings? Tcp(YamlNode node, string path)
    {
        var tcp = new TcpSettings();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "maxConnections":
                    tcp = tcp with { MaxConnections = Count(v, p) };
                    break;
                case "connectTimeout":
                    tcp = tcp with { ConnectTimeout = s.IstioDuration(v, p) };
                    break;
                case "tcpKeepalive":
                    uint? probes = null;
                    TimeSpan? time = null, interval = null;
                    foreach ((YamlScalarNode kk, string kf, YamlNode kv, string kp) in s.Fields(v, p))
                    {
                        switch (kf)
                        {
                            case "probes":
                                probes = s.UInt(kv, kp);
                                break;
                            case "time":
                                time = s.IstioDuration(kv, kp);
                                break;
                            case "interval":
                                interval = s.IstioDuration(kv, kp);
                                break;
                            default:
                                s.Unknown(kk, p, KeepaliveKeys);
                                break;
                        }
                    }
                    tcp = tcp with { TcpKeepalive = new TcpKeepalive(probes, time, interval) };
                    break;
                case "maxConnectionDuration":
                    tcp = tcp with { MaxConnectionDuration = s.IstioDuration(v, p) };
                    break;
                case "idleTimeout":
                    tcp = tcp with { IdleTimeout = s.IstioDuration(v, p, allowZero: true) };
                    break;
                default:
                    s.Unknown(k, path, TcpKeys);
                    break;
            }
        }
        return tcp;
    }

    private HttpSettings? HttpPool(YamlNode node, string path)
    {
        var http = new HttpSettings();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "http1MaxPendingRequests":
                    http = http with { Http1MaxPendingRequests = Count(v, p) };
                    break;
                case "http2MaxRequests":
                    http = http with { Http2MaxRequests = Count(v, p) };
                    break;
                case "maxRequestsPerConnection":
                    http = http with { MaxRequestsPerConnection = Count(v, p) };
                    break;
                case "maxRetries":
                    http = http with { MaxRetries = Count(v, p) };
                    break;
                case "idleTimeout":
                    http = http with { IdleTimeout = s.IstioDuration(v, p) };
                    break;
                case "h2UpgradePolicy":
                    http = http with { H2UpgradePolicy = s.Enum(v, p, H2Policies) ?? H2UpgradePolicy.Default };
                    break;
                case "useClientProtocol":
                    http = http with { UseClientProtocol = s.Bool(v, p) ?? false };
                    break;
                case "maxConcurrentStreams":
                    http = http with { MaxConcurrentStreams = Count(v, p) };
                    break;
                case "http2KeepAlive":
                    TimeSpan? interval = null, timeout = null;
                    foreach ((YamlScalarNode kk, string kf, YamlNode kv, string kp) in s.Fields(v, p))
                    {
                        switch (kf)
                        {
                            case "interval":
                                interval = s.IstioDuration(kv, kp);
                                break;
                            case "timeout":
                                timeout = s.IstioDuration(kv, kp);
                                break;
                            default:
                                s.Unknown(kk, p, ["interval", "timeout"]);
                                break;
                        }
                    }
                    bool hasInterval = s.Require(v, p, "interval", "the HTTP/2 PING interval");
                    bool hasTimeout = s.Require(v, p, "timeout", "how long to wait for a PING answer");
                    if (hasInterval && hasTimeout && interval is { } i && timeout is { } t)
                    {
                        http = http with { Http2KeepAlive = new Http2KeepAlive(i, t) };
                    }
                    break;
                default:
                    s.Unknown(k, path, HttpPoolKeys);
                    break;
            }
        }
        if (http.H2UpgradePolicy == H2UpgradePolicy.Upgrade && http.UseClientProtocol)
        {
            s.Error(node, Child(path, "useClientProtocol"), "useClientProtocol must not be true when h2UpgradePolicy is UPGRADE");
        }
        return http;
    }

    private OutlierDetection? Outlier(YamlNode node, string path)
    {
        var od = new OutlierDetection();
        YamlNode? localOriginNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "splitExternalLocalOriginErrors":
                    od = od with { SplitExternalLocalOriginErrors = s.Bool(v, p) ?? false };
                    break;
                case "consecutiveLocalOriginFailures":
                    localOriginNode = v;
                    od = od with { ConsecutiveLocalOriginFailures = s.UInt(v, p) };
                    break;
                case "consecutiveGatewayErrors":
                    od = od with { ConsecutiveGatewayErrors = s.UInt(v, p) };
                    break;
                case "consecutive5xxErrors":
                    od = od with { Consecutive5xxErrors = s.UInt(v, p) };
                    break;
                case "interval":
                    od = od with { Interval = s.IstioDuration(v, p) };
                    break;
                case "baseEjectionTime":
                    od = od with { BaseEjectionTime = s.IstioDuration(v, p) };
                    break;
                case "maxEjectionPercent":
                    od = od with { MaxEjectionPercent = s.Int(v, p, 0, 100) };
                    break;
                case "minHealthPercent":
                    od = od with { MinHealthPercent = s.Int(v, p, 0, 100) };
                    break;
                case "consecutiveErrors":
                    // Istio no longer programs it; keep the manifest loadable but say so.
                    s.Int(v, p);
                    s.Warning(k, p, "consecutiveErrors is deprecated and ignored; use consecutiveGatewayErrors or consecutive5xxErrors");
                    break;
                case "outlierDetectionHttpErrorCodes":
                    od = od with { OutlierDetectionHttpErrorCodes = s.Values(v, p, int.MaxValue, (n, q) => s.Int(n, q, 100, 599)) };
                    break;
                default:
                    s.Unknown(k, path, OutlierKeys);
                    break;
            }
        }
        if (!od.SplitExternalLocalOriginErrors && od.ConsecutiveLocalOriginFailures > 0)
        {
            s.Error(localOriginNode, Child(path, "consecutiveLocalOriginFailures"),
                "consecutiveLocalOriginFailures is set but splitExternalLocalOriginErrors is false");
        }
        return od;
    }

    private ClientTlsSettings? Tls(YamlNode node, string path)
    {
        var tls = new ClientTlsSettings();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "mode":
                    tls = tls with { Mode = s.Enum(v, p, TlsModes) ?? ClientTlsMode.Disable };
                    break;
                case "clientCertificate":
                    tls = tls with { ClientCertificate = s.String(v, p) };
                    break;
                case "privateKey":
                    tls = tls with { PrivateKey = s.String(v, p) };
                    break;
                case "caCertificates":
                    tls = tls with { CaCertificates = s.String(v, p) };
                    break;
                case "credentialName":
                    tls = tls with { CredentialName = s.String(v, p) };
                    break;
                case "subjectAltNames":
                    tls = tls with { SubjectAltNames = s.Strings(v, p) };
                    break;
                case "sni":
                    tls = tls with { Sni = s.String(v, p) };
                    break;
                case "insecureSkipVerify":
                    tls = tls with { InsecureSkipVerify = s.Bool(v, p) };
                    break;
                case "caCrl":
                    tls = tls with { CaCrl = s.String(v, p) };
                    break;
                default:
                    s.Unknown(k, path, TlsKeys);
                    break;
            }
        }
        bool fileBased = tls.Mode is ClientTlsMode.Simple or ClientTlsMode.Mutual;
        if (tls.InsecureSkipVerify == true && fileBased && (!string.IsNullOrEmpty(tls.CaCertificates) || !tls.SubjectAltNames.IsEmpty
            || (tls.Mode == ClientTlsMode.Simple && !string.IsNullOrEmpty(tls.CredentialName))))
        {
            s.Error(node, Child(path, "insecureSkipVerify"), "cannot verify against CA certificates or subjectAltNames when insecureSkipVerify is true");
        }
        if (fileBased && !string.IsNullOrEmpty(tls.CredentialName))
        {
            if (!string.IsNullOrEmpty(tls.ClientCertificate) || !string.IsNullOrEmpty(tls.PrivateKey)
                || !string.IsNullOrEmpty(tls.CaCertificates) || !string.IsNullOrEmpty(tls.CaCrl))
            {
                s.Error(node, Child(path, "credentialName"), "cannot set certificate, key, CA or CRL files when credentialName is set");
            }
        }
        else if (tls.Mode == ClientTlsMode.Mutual)
        {
            if (string.IsNullOrEmpty(tls.ClientCertificate))
            {
                s.Missing(node, path, "clientCertificate", "MUTUAL TLS needs a client certificate (or credentialName)");
            }
            if (string.IsNullOrEmpty(tls.PrivateKey))
            {
                s.Missing(node, path, "privateKey", "MUTUAL TLS needs a private key (or credentialName)");
            }
        }
        return tls;
    }

    private TunnelSettings? Tunnel(YamlNode node, string path)
    {
        string protocol = "CONNECT";
        string? host = null;
        int? port = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "protocol":
                    protocol = s.OneOf(v, p, ["CONNECT", "POST"]) ?? protocol;
                    break;
                case "targetHost":
                    host = s.NonEmpty(v, p);
                    if (host is not null && !IsIp(host) && FqdnProblem(host) is { } problem)
                    {
                        s.Error(v, p, $"must be an FQDN or IP address: {problem}");
                        host = null;
                    }
                    break;
                case "targetPort":
                    port = Port(v, p, zeroIsUnset: false);
                    break;
                default:
                    s.Unknown(k, path, TunnelKeys);
                    break;
            }
        }
        bool ok = s.Require(node, path, "targetHost", "the host to tunnel to");
        ok &= s.Require(node, path, "targetPort", "the port to tunnel to");
        return ok && host is not null && port is int n ? new TunnelSettings(protocol, host, n) : null;
    }

    private RetryBudget? RetryBudget(YamlNode node, string path)
    {
        double? percent = null;
        uint? min = null;
        TimeSpan? interval = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "percent":
                    percent = s.Double(v, p, 0, 100);
                    break;
                case "minRetryConcurrency":
                    min = s.UInt(v, p);
                    break;
                case "budgetInterval":
                    interval = s.IstioDuration(v, p, allowZero: true);
                    break;
                default:
                    s.Unknown(k, path, RetryBudgetKeys);
                    break;
            }
        }
        return new RetryBudget(percent, min, interval);
    }
}
