using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

public sealed class DestinationRuleTests
{
    internal const string Full = """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews
          namespace: bookinfo
        spec:
          host: reviews.bookinfo.svc.cluster.local
          exportTo: [".", istio-system]
          trafficPolicy:
            loadBalancer:
              simple: ROUND_ROBIN
              localityLbSetting:
                enabled: true
                failover:
                - from: us-east
                  to: us-west
            connectionPool:
              tcp:
                maxConnections: 100
                connectTimeout: 30ms
                idleTimeout: 0s
                tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}
              http:
                http1MaxPendingRequests: 10
                http2MaxRequests: 1000
                maxRequestsPerConnection: 1
                maxRetries: 3
                idleTimeout: 90s
                h2UpgradePolicy: UPGRADE
            outlierDetection:
              consecutive5xxErrors: 7
              consecutiveGatewayErrors: 3
              interval: 5m
              baseEjectionTime: 15m
              maxEjectionPercent: 50
              minHealthPercent: 30
            retryBudget:
              percent: 25.5
              minRetryConcurrency: 5
            portLevelSettings:
            - port: {number: 9443}
              tls:
                mode: SIMPLE
                sni: reviews.example.com
                caCertificates: /etc/certs/ca.pem
            - port: {number: 9080}
              loadBalancer:
                simple: RANDOM
          subsets:
          - name: v1
            labels: {version: v1}
          - name: v2
            labels: {version: v2, app.kubernetes.io/part-of: bookinfo}
            trafficPolicy:
              loadBalancer:
                consistentHash:
                  httpCookie:
                    name: user
                    ttl: 0s
                    path: /
                    attributes:
                    - name: SameSite
                      value: Strict
                  ringHash: {minimumRingSize: 2048}
              connectionPool:
                http: {http2MaxRequests: 5}
          - name: v3
            labels: {version: v3}
            trafficPolicy:
              loadBalancer:
                consistentHash: {httpHeaderName: x-user}
              portLevelSettings:
              - port: {number: 9080}
                outlierDetection: {consecutive5xxErrors: 1}
        """;

    [Fact]
    public void FullManifestParsesIntoTheRecord()
    {
        DestinationRule dr = L7Manifest.Valid<DestinationRule>(Full);
        Assert.Equal("DestinationRule/bookinfo/reviews", dr.Key);
        Assert.Equal("reviews.bookinfo.svc.cluster.local", dr.Host);
        Assert.Equal<string>([".", "istio-system"], dr.ExportTo);
        Assert.Null(dr.WorkloadSelector);

        TrafficPolicy tp = dr.TrafficPolicy!;
        Assert.Equal(SimpleLoadBalancer.RoundRobin, tp.LoadBalancer!.Simple);
        Assert.Null(tp.LoadBalancer.ConsistentHash);
        LocalityLbSetting locality = tp.LoadBalancer.LocalityLbSetting!;
        Assert.True(locality.Enabled);
        Assert.Equal(new LocalityFailover("us-east", "us-west"), Assert.Single(locality.Failover));

        TcpSettings tcp = tp.ConnectionPool!.Tcp!;
        Assert.Equal(100, tcp.MaxConnections);
        Assert.Equal(TimeSpan.FromMilliseconds(30), tcp.ConnectTimeout);
        Assert.Equal(TimeSpan.Zero, tcp.IdleTimeout);
        Assert.Equal(new TcpKeepalive(3, TimeSpan.FromHours(2), TimeSpan.FromSeconds(75)), tcp.TcpKeepalive);
        HttpSettings http = tp.ConnectionPool.Http!;
        Assert.Equal(10, http.Http1MaxPendingRequests);
        Assert.Equal(1000, http.Http2MaxRequests);
        Assert.Equal(1, http.MaxRequestsPerConnection);
        Assert.Equal(3, http.MaxRetries);
        Assert.Equal(TimeSpan.FromSeconds(90), http.IdleTimeout);
        Assert.Equal(H2UpgradePolicy.Upgrade, http.H2UpgradePolicy);
        // http.idleTimeout wins over tcp's "0s" (disabled).
        Assert.Equal(TimeSpan.FromSeconds(90), tp.ConnectionPool.EffectiveIdleTimeout);

        OutlierDetection od = tp.OutlierDetection!;
        Assert.Equal(7u, od.Consecutive5xxErrors);
        Assert.Equal(3u, od.ConsecutiveGatewayErrors);
        Assert.Equal(TimeSpan.FromMinutes(5), od.Interval);
        Assert.Equal(TimeSpan.FromMinutes(15), od.BaseEjectionTime);
        Assert.Equal(50, od.MaxEjectionPercent);
        Assert.Equal(30, od.MinHealthPercent);

        Assert.Equal(25.5, tp.RetryBudget!.EffectivePercent);
        Assert.Equal(5u, tp.RetryBudget.EffectiveMinRetryConcurrency);

        Assert.Equal(2, tp.PortLevelSettings.Length);
        PortTrafficPolicy tlsPort = tp.PortLevelSettings[0];
        Assert.Equal(9443, tlsPort.Port);
        Assert.Equal(ClientTlsMode.Simple, tlsPort.Tls!.Mode);
        Assert.Equal("reviews.example.com", tlsPort.Tls.Sni);
        Assert.Equal("/etc/certs/ca.pem", tlsPort.Tls.CaCertificates);

        Assert.Equal(3, dr.Subsets.Length);
        Assert.Equal("v1", dr.Subsets[0].Name);
        Assert.Equal("v1", dr.Subsets[0].Labels["version"]);
        Assert.Null(dr.Subsets[0].TrafficPolicy);
        Subset v2 = dr.FindSubset("v2")!;
        Assert.Equal("bookinfo", v2.Labels["app.kubernetes.io/part-of"]);
        ConsistentHashLb hash = v2.TrafficPolicy!.LoadBalancer!.ConsistentHash!;
        Assert.Equal(HashKeyType.HttpCookie, hash.Key);
        Assert.Equal("user", hash.Cookie!.Name);
        Assert.Equal(TimeSpan.Zero, hash.Cookie.Ttl);
        Assert.Equal("/", hash.Cookie.Path);
        Assert.Equal(new KeyValuePair<string, string?>("SameSite", "Strict"), Assert.Single(hash.Cookie.Attributes));
        Assert.Equal(2048ul, hash.RingHashMinimumRingSize);
        Assert.Equal(HashKeyType.HttpHeaderName, dr.FindSubset("v3")!.TrafficPolicy!.LoadBalancer!.ConsistentHash!.Key);
        Assert.Equal("x-user", dr.FindSubset("v3")!.TrafficPolicy!.LoadBalancer!.ConsistentHash!.KeyName);
    }

    [Fact]
    public void PolicyForAPortAndSubsetMergesAsIstioDoes()
    {
        DestinationRule dr = L7Manifest.Valid<DestinationRule>(Full);

        // Port 9080 has a port-level setting: it replaces the four per-port parts, so the top-level connection pool
        // and outlier detection are not inherited there, but the retry budget (not per port) is.
        TrafficPolicy p9080 = dr.PolicyFor(9080)!;
        Assert.Equal(SimpleLoadBalancer.Random, p9080.LoadBalancer!.Simple);
        Assert.Null(p9080.ConnectionPool);
        Assert.Null(p9080.OutlierDetection);
        Assert.NotNull(p9080.RetryBudget);
        Assert.True(p9080.PortLevelSettings.IsEmpty);

        // Another port: the top level as is.
        TrafficPolicy p8080 = dr.PolicyFor(8080)!;
        Assert.Equal(SimpleLoadBalancer.RoundRobin, p8080.LoadBalancer!.Simple);
        Assert.Equal(100, p8080.ConnectionPool!.Tcp!.MaxConnections);

        // Subset v2 overrides the parts it sets (load balancer, connection pool) and inherits the rest.
        TrafficPolicy v2 = dr.PolicyFor(8080, "v2")!;
        Assert.Equal(HashKeyType.HttpCookie, v2.LoadBalancer!.ConsistentHash!.Key);
        Assert.Equal(5, v2.ConnectionPool!.Http!.Http2MaxRequests);
        Assert.Null(v2.ConnectionPool.Tcp);
        Assert.Equal(7u, v2.OutlierDetection!.Consecutive5xxErrors);

        // Subset v3's port-level setting for 9080 replaces all four per-port parts.
        TrafficPolicy v3 = dr.PolicyFor(9080, "v3")!;
        Assert.Equal(1u, v3.OutlierDetection!.Consecutive5xxErrors);
        Assert.Null(v3.LoadBalancer);
        Assert.Null(v3.ConnectionPool);

        // An unknown subset falls back to the rule's policy.
        Assert.Equal(SimpleLoadBalancer.RoundRobin, dr.PolicyFor(8080, "v9")!.LoadBalancer!.Simple);
    }

    [Fact]
    public void EffectiveDefaultsAreIstiosAndEnvoys()
    {
        DestinationRule dr = L7Manifest.Valid<DestinationRule>("""
            apiVersion: networking.istio.io/v1beta1
            kind: DestinationRule
            metadata:
              name: defaults
            spec:
              host: ratings
              trafficPolicy:
                loadBalancer: {localityLbSetting: {enabled: false}}
                connectionPool:
                  tcp: {maxConnections: 0}
                  http: {}
                outlierDetection: {}
                retryBudget: {}
            """);
        TrafficPolicy tp = dr.TrafficPolicy!;
        Assert.Null(tp.LoadBalancer!.Simple);
        Assert.Equal(SimpleLoadBalancer.LeastRequest, tp.LoadBalancer.EffectiveSimple);
        Assert.Equal(uint.MaxValue, tp.ConnectionPool!.Tcp!.EffectiveMaxConnections); // 0 reads as unset
        Assert.Equal(TimeSpan.FromSeconds(10), tp.ConnectionPool.Tcp.EffectiveConnectTimeout);
        Assert.Equal(uint.MaxValue, tp.ConnectionPool.Http!.EffectiveMaxPendingRequests);
        Assert.Equal(uint.MaxValue, tp.ConnectionPool.Http.EffectiveMaxRequests);
        Assert.Equal(uint.MaxValue, tp.ConnectionPool.Http.EffectiveMaxRetries);
        Assert.Equal(0, tp.ConnectionPool.Http.EffectiveMaxRequestsPerConnection);
        Assert.Equal(TimeSpan.FromHours(1), tp.ConnectionPool.EffectiveIdleTimeout);
        OutlierDetection od = tp.OutlierDetection!;
        Assert.Equal(5u, od.EffectiveConsecutive5xxErrors);
        Assert.Equal(0u, od.EffectiveConsecutiveGatewayErrors);
        Assert.Equal(0u, od.EffectiveConsecutiveLocalOriginFailures);
        Assert.Equal(TimeSpan.FromSeconds(10), od.EffectiveInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), od.EffectiveBaseEjectionTime);
        Assert.Equal(10, od.EffectiveMaxEjectionPercent);
        Assert.Equal(0, od.EffectiveMinHealthPercent);
        Assert.Equal(20, tp.RetryBudget!.EffectivePercent);
        Assert.Equal(3u, tp.RetryBudget.EffectiveMinRetryConcurrency);
        Assert.Equal(TimeSpan.Zero, tp.RetryBudget.EffectiveBudgetInterval);
        Assert.Empty(dr.Subsets);
        Assert.Equal("default", dr.Namespace);
    }

    [Fact]
    public void DeprecatedSettingsLoadWithAWarning()
    {
        L7Manifest.Result r = L7Manifest.Parse("""
            apiVersion: networking.istio.io/v1alpha3
            kind: DestinationRule
            metadata:
              name: legacy
            spec:
              host: ratings
              trafficPolicy:
                loadBalancer: {simple: LEAST_CONN}
                outlierDetection: {consecutiveErrors: 5}
            """);
        Assert.Empty(r.Errors);
        var dr = Assert.IsType<DestinationRule>(r.Object);
        Assert.Equal(SimpleLoadBalancer.LeastRequest, dr.TrafficPolicy!.LoadBalancer!.EffectiveSimple);
        Assert.Contains(r.Warnings, w => w.Field == "spec.trafficPolicy.loadBalancer.simple" && w.Line == 8);
        Assert.Contains(r.Warnings, w => w.Field == "spec.trafficPolicy.outlierDetection.consecutiveErrors" && w.Line == 9);
    }

    private const string Head = """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: bad
        spec:
          host: reviews

        """;

    // Each case: the spec body after "host" (starting on line 7), the field and line of the expected error, part of its message.
    public static TheoryData<string, string, string, int, string> BadInputs() => new()
    {
        { "unknown spec field", "  subset: []\n", "spec.subset", 7, "did you mean 'subsets'" },
        { "unknown traffic policy field", "  trafficPolicy:\n    loadBalancr: {}\n", "spec.trafficPolicy.loadBalancr", 8, "did you mean 'loadBalancer'" },
        { "unknown connection pool field", "  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnection: 1}\n",
            "spec.trafficPolicy.connectionPool.tcp.maxConnection", 9, "did you mean 'maxConnections'" },
        { "bad load balancer", "  trafficPolicy:\n    loadBalancer: {simple: LEAST_REQUESTS}\n",
            "spec.trafficPolicy.loadBalancer.simple", 8, "'LEAST_REQUESTS' is not one of: UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST" },
        { "enum case matters", "  trafficPolicy:\n    loadBalancer: {simple: round_robin}\n",
            "spec.trafficPolicy.loadBalancer.simple", 8, "'round_robin' is not one of" },
        { "simple and hash", "  trafficPolicy:\n    loadBalancer:\n      simple: RANDOM\n      consistentHash: {useSourceIp: true}\n",
            "spec.trafficPolicy.loadBalancer.consistentHash", 10, "only one of simple and consistentHash" },
        { "two hash keys", "  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n        httpHeaderName: x\n        useSourceIp: true\n",
            "spec.trafficPolicy.loadBalancer.consistentHash.useSourceIp", 11, "only one hash key" },
        { "hash without key", "  trafficPolicy:\n    loadBalancer:\n      consistentHash: {ringHash: {minimumRingSize: 10}}\n",
            "spec.trafficPolicy.loadBalancer.consistentHash", 9, "one hash key is required" },
        { "cookie without name", "  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpCookie: {ttl: 10s}}\n",
            "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name", 9, "required" },
        { "maglev size not prime", "  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true, maglev: {tableSize: 1000}}\n",
            "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize", 9, "must be a prime" },
        { "negative max connections", "  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: -1}\n",
            "spec.trafficPolicy.connectionPool.tcp.maxConnections", 9, "negative" },
        { "negative pending", "  trafficPolicy:\n    connectionPool:\n      http: {http1MaxPendingRequests: -5}\n",
            "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests", 9, "negative" },
        { "quoted count", "  trafficPolicy:\n    connectionPool:\n      http: {maxRetries: \"3\"}\n",
            "spec.trafficPolicy.connectionPool.http.maxRetries", 9, "expected an integer" },
        { "bad duration", "  trafficPolicy:\n    connectionPool:\n      tcp: {connectTimeout: 10 seconds}\n",
            "spec.trafficPolicy.connectionPool.tcp.connectTimeout", 9, "is not a duration" },
        { "duration under 1ms", "  trafficPolicy:\n    outlierDetection: {interval: 500us}\n",
            "spec.trafficPolicy.outlierDetection.interval", 8, "at least 1ms" },
        { "negative duration", "  trafficPolicy:\n    outlierDetection: {baseEjectionTime: -30s}\n",
            "spec.trafficPolicy.outlierDetection.baseEjectionTime", 8, "negative" },
        { "ejection percent over 100", "  trafficPolicy:\n    outlierDetection: {maxEjectionPercent: 150}\n",
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent", 8, "out of range (0-100)" },
        { "negative consecutive errors", "  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: -1}\n",
            "spec.trafficPolicy.outlierDetection.consecutive5xxErrors", 8, "out of range" },
        { "local origin without split", "  trafficPolicy:\n    outlierDetection: {consecutiveLocalOriginFailures: 3}\n",
            "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures", 8, "splitExternalLocalOriginErrors is false" },
        { "empty traffic policy", "  trafficPolicy: {}\n", "spec.trafficPolicy", 7, "at least one field" },
        { "empty connection pool", "  trafficPolicy:\n    connectionPool: {}\n", "spec.trafficPolicy.connectionPool", 8, "at least one of tcp and http" },
        { "keepalive without timeout", "  trafficPolicy:\n    connectionPool:\n      http: {http2KeepAlive: {interval: 10s}}\n",
            "spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout", 9, "required" },
        { "upgrade with client protocol", "  trafficPolicy:\n    connectionPool:\n      http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}\n",
            "spec.trafficPolicy.connectionPool.http.useClientProtocol", 9, "must not be true when h2UpgradePolicy is UPGRADE" },
        { "port policy without port", "  trafficPolicy:\n    portLevelSettings:\n    - tls: {mode: ISTIO_MUTUAL}\n",
            "spec.trafficPolicy.portLevelSettings[0].port", 9, "required" },
        { "port out of range", "  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 70000}\n      tls: {mode: ISTIO_MUTUAL}\n",
            "spec.trafficPolicy.portLevelSettings[0].port.number", 9, "out of range (1-65535)" },
        { "mutual tls without key", "  trafficPolicy:\n    tls: {mode: MUTUAL, clientCertificate: /c.pem}\n",
            "spec.trafficPolicy.tls.privateKey", 8, "MUTUAL TLS needs a private key" },
        { "credential name with files", "  trafficPolicy:\n    tls: {mode: SIMPLE, credentialName: s, caCertificates: /ca.pem}\n",
            "spec.trafficPolicy.tls.credentialName", 8, "cannot set certificate" },
        { "distribute weights", "  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - from: us-west/zone1/*\n          to: {us-west/zone1/*: 80, us-west/zone2/*: 10}\n",
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to", 12, "add up to 90" },
        { "negative distribute weight", "  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - from: r1/*\n          to: {r1/z1: -10, r2: 110}\n",
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to.r1/z1", 12, "out of range (1-100)" },
        { "distribute weights over 100", "  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - from: r1/*\n          to: {r1/z1: 60, r2: 60}\n",
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to", 12, "add up to 120" },
        { "unknown distribute field", "  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - {from: r1/*, weight: 5, to: {r1: 100}}\n",
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].weight", 11, "unknown field 'weight'" },
        { "unknown locality field", "  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        failoverPriorities: [a]\n",
            "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriorities", 10, "unknown field 'failoverPriorities'" },
        { "empty failover priority", "  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        failoverPriority: [\"=v2\"]\n",
            "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[0]", 10, "a label key, or key=value" },
        { "negative requests per connection", "  trafficPolicy:\n    connectionPool:\n      http: {maxRequestsPerConnection: -1}\n",
            "spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection", 9, "negative" },
        { "failover to the same region", "  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        failover:\n        - {from: us-east, to: us-east}\n",
            "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]", 11, "different region" },
        { "distribute and failover", "  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - {from: \"*\", to: {us-east: 100}}\n        failover:\n        - {from: us-east, to: us-west}\n",
            "spec.trafficPolicy.loadBalancer.localityLbSetting.failover", 12, "cannot set both 'distribute' and 'failover'" },
        { "retry budget percent", "  trafficPolicy:\n    retryBudget: {percent: 120}\n", "spec.trafficPolicy.retryBudget.percent", 8, "out of range (0-100)" },
        { "tunnel with proxy protocol", "  trafficPolicy:\n    tunnel: {targetHost: proxy.example.com, targetPort: 8080}\n    proxyProtocol: {version: V2}\n",
            "spec.trafficPolicy.proxyProtocol", 9, "must not be set together" },
        { "subset without name", "  subsets:\n  - labels: {version: v1}\n", "spec.subsets[0].name", 8, "required" },
        { "bad subset name", "  subsets:\n  - name: v1.0\n", "spec.subsets[0].name", 8, "not a valid subset name" },
        { "duplicate subset", "  subsets:\n  - name: v1\n  - name: v1\n", "spec.subsets[1].name", 9, "duplicate subset name 'v1'" },
        { "bad label key", "  subsets:\n  - name: v1\n    labels: {\"-bad\": x}\n", "spec.subsets[0].labels.-bad", 9, "not a valid label key" },
        { "exportTo duplicate", "  exportTo: [\".\", default]\n", "spec.exportTo", 7, "duplicate entries in exportTo" },
        { "selector beyond namespace", "  workloadSelector: {matchLabels: {app: a}}\n  exportTo: [\"*\"]\n", "spec.exportTo", 8, "cannot be exported beyond its own namespace" },
        { "wildcard selector", "  workloadSelector: {matchLabels: {app: \"a*\"}}\n", "spec.workloadSelector.matchLabels.app", 7, "must not contain a wildcard" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputIsRefusedWithFieldAndLine(string name, string body, string field, int line, string message)
    {
        Assert.NotEmpty(name);
        L7Manifest.Refused(Head + body, field, line, message);
    }

    [Fact]
    public void HostIsRequiredAndValidated()
    {
        L7Manifest.Refused("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: nohost
            spec:
              subsets: [{name: v1}]
            """, "spec.host", 6, "required");
        L7Manifest.Refused("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: iphost
            spec:
              host: 10.0.0.1
            """, "spec.host", 6, "all-numeric");
    }
}
