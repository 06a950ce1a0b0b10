using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.Tests.Config;

public sealed class ConfigLoaderTests
{
    // Written the way Istio's ztunnel docs and examples/localhost.yaml write a LOCAL_XDS_PATH file, plus the
    // fields its serde types define (waypoint, locality, loadBalancer, tagged string matches, ...).
    private const string IstioLocalConfig = """
        # ztunnel local config (LOCAL_XDS_PATH)
        workloads:
        - uid: cluster1//v1/Pod/default/local
          name: local
          namespace: default
          serviceAccount: default
          workloadIps: ["127.0.0.1"]
          protocol: HBONE
          node: local
          network: ""
          services:
            "default/example.com":
              80: 8080
            "default/example2.com":
              80: 8080
        - uid: cluster1//v1/Pod/default/local-tcp
          name: local-tcp
          namespace: default
          serviceAccount: default
          workloadIps: ["127.0.0.2"]
          protocol: TCP
          node: local
          network: ""
          services:
            "default/example.com":
              80: 8080
        - uid: cluster1//v1/Pod/bookinfo/reviews-v1-abc
          name: reviews-v1-abc
          namespace: bookinfo
          serviceAccount: bookinfo-reviews
          trustDomain: cluster.local
          workloadIps: ["10.244.1.7", "fd00:10:244::7"]
          protocol: HBONE
          networkMode: Standard
          node: worker-1
          clusterId: cluster1
          workloadName: reviews-v1
          workloadType: deployment
          canonicalName: reviews
          canonicalRevision: v1
          status: Healthy
          capacity: 2
          locality:
            region: us-east1
            zone: us-east1-b
            subzone: rack7
          waypoint:
            destination: bookinfo/waypoint.bookinfo.svc.cluster.local
            hboneMtlsPort: 15008
          authorizationPolicies: ["bookinfo/reviews-viewer"]
          nativeTunnel: false
          services: {}
        services:
        - name: local
          namespace: default
          hostname: example.com
          vips:
            - /127.10.0.1
          ports:
            80: 8080
          subjectAltNames:
           - spiffe://cluster.local/ns/default/sa/local
        - name: remote
          namespace: default
          hostname: example2.com
          vips:
            - remote/127.10.0.2
          ports:
            80: 8080
          waypoint:
            destination: "/10.96.0.20"
            hboneMtlsPort: 15008
          loadBalancer:
            routingPreferences: [Zone, Network]
            mode: Failover
            healthPolicy: AllowAll
          ipFamilies: IPv4
        policies:
          - action: Allow
            rules:
            - - - notDestinationPorts:
                  - 9999
            name: deny-9999
            namespace: default
            scope: Namespace
          - name: reviews-viewer
            namespace: bookinfo
            scope: WorkloadSelector
            action: Allow
            dryRun: false
            rules:
            - - - principals:
                  - !Exact cluster.local/ns/bookinfo/sa/bookinfo-productpage
                  - !Prefix cluster.local/ns/bookinfo/
                  - !Suffix /sa/admin
                  - !Presence []
                  namespaces:
                  - Exact: bookinfo
                  serviceAccounts:
                  - namespace: bookinfo
                    serviceAccount: bookinfo-productpage
                  sourceIps: ["10.244.0.0/16", "10.1.2.3"]
                  destinationIps: ["fd00::/8"]
              - - destinationPorts: [9080]
        """;

    [Fact]
    public void IstioLocalConfigLoadsUnchanged()
    {
        ConfigLoadResult result = ConfigLoader.Parse(IstioLocalConfig, "local.yaml");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Empty(result.Warnings);
        MeshConfig c = result.Config!;

        Assert.Equal(3, c.Workloads.Length);
        Workload local = c.Workloads[0];
        Assert.Equal("cluster1//v1/Pod/default/local", local.Uid);
        Assert.Equal(InboundProtocol.Hbone, local.Protocol);
        Assert.Equal(IPAddress.Parse("127.0.0.1"), local.WorkloadIps[0]);
        Assert.Equal(8080, local.Services["default/example.com"][80]);
        Assert.Equal(InboundProtocol.Tcp, c.Workloads[1].Protocol);

        Workload reviews = c.Workloads[2];
        Assert.Equal("bookinfo-reviews", reviews.ServiceAccount);
        Assert.Equal(2, reviews.WorkloadIps.Length);
        Assert.Equal(IPAddress.Parse("fd00:10:244::7"), reviews.WorkloadIps[1]);
        Assert.Equal("worker-1", reviews.Node);
        Assert.Equal("cluster1", reviews.ClusterId);
        Assert.Equal("deployment", reviews.WorkloadType);
        Assert.Equal("reviews", reviews.CanonicalName);
        Assert.Equal("v1", reviews.CanonicalRevision);
        Assert.Equal(2, reviews.Capacity);
        Assert.Equal(new Locality("us-east1", "us-east1-b", "rack7"), reviews.Locality);
        Assert.Equal("waypoint.bookinfo.svc.cluster.local", reviews.Waypoint!.Hostname);
        Assert.Equal("bookinfo", reviews.Waypoint.Namespace);
        Assert.Equal<string>(["bookinfo/reviews-viewer"], reviews.AuthorizationPolicies);

        Service local1 = c.Services[0];
        Assert.Equal(new NetworkAddress("", IPAddress.Parse("127.10.0.1")), local1.Vips[0]);
        Assert.Equal(8080, local1.Ports[80]);
        Assert.Equal<string>(["spiffe://cluster.local/ns/default/sa/local"], local1.SubjectAltNames);
        Service remote = c.Services[1];
        Assert.Equal("remote", remote.Vips[0].Network);
        Assert.Equal(IPAddress.Parse("10.96.0.20"), remote.Waypoint!.Address);
        Assert.Equal<LoadBalancingScope>([LoadBalancingScope.Zone, LoadBalancingScope.Network], remote.LoadBalancing!.RoutingPreference);
        Assert.Equal(LoadBalancingMode.Failover, remote.LoadBalancing.Mode);
        Assert.Equal(LoadBalancingHealthPolicy.AllowAll, remote.LoadBalancing.HealthPolicy);

        AuthorizationPolicy deny9999 = c.Policies[0];
        Assert.Equal(PolicyScope.Namespace, deny9999.Scope);
        Assert.Equal(PolicyAction.Allow, deny9999.Action);
        Assert.Equal<int>([9999], deny9999.Rules[0].Clauses[0].Matches[0].NotDestinationPorts);

        AuthorizationPolicy viewer = c.Policies[1];
        Assert.Equal(PolicyScope.WorkloadSelector, viewer.Scope);
        PolicyMatch m = viewer.Rules[0].Clauses[0].Matches[0];
        Assert.Equal<StringMatch>(
            [
                new StringMatch(StringMatchKind.Exact, "cluster.local/ns/bookinfo/sa/bookinfo-productpage"),
                new StringMatch(StringMatchKind.Prefix, "cluster.local/ns/bookinfo/"),
                new StringMatch(StringMatchKind.Suffix, "/sa/admin"),
                new StringMatch(StringMatchKind.Presence, ""),
            ],
            m.Principals);
        Assert.Equal<StringMatch>([new StringMatch(StringMatchKind.Exact, "bookinfo")], m.Namespaces);
        Assert.Equal<ServiceAccountMatch>([new ServiceAccountMatch("bookinfo", "bookinfo-productpage")], m.NamespacedServiceAccounts);
        Assert.Equal<IpNet>([new IpNet(IPAddress.Parse("10.244.0.0"), 16), new IpNet(IPAddress.Parse("10.1.2.3"), 32)], m.SourceIps);
        Assert.Equal<IpNet>([new IpNet(IPAddress.Parse("fd00::"), 8)], m.DestinationIps);
        Assert.Equal<int>([9080], viewer.Rules[0].Clauses[1].Matches[0].DestinationPorts);
    }

    [Theory]
    [InlineData("[{Exact: a}, {Prefix: b}, {Suffix: c}, {Presence: []}]")]
    [InlineData("[{exact: a}, {prefix: b}, {suffix: c}, {presence: {}}]")]
    [InlineData("[!Exact a, !Prefix b, !Suffix c, !Presence []]")]
    [InlineData("[a, b*, '*c', '*']")]
    public void StringMatchForms(string list)
    {
        string yaml = $"""
            policies:
            - name: p
              namespace: ns
              scope: Global
              action: Deny
              rules: [[[{"{"}namespaces: {list}{"}"}]]]
            """;
        ConfigLoadResult result = ConfigLoader.Parse(yaml, "c.yaml");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Equal<StringMatch>(
            [
                new StringMatch(StringMatchKind.Exact, "a"),
                new StringMatch(StringMatchKind.Prefix, "b"),
                new StringMatch(StringMatchKind.Suffix, "c"),
                new StringMatch(StringMatchKind.Presence, ""),
            ],
            result.Config!.Policies[0].Rules[0].Clauses[0].Matches[0].Namespaces);
    }

    [Fact]
    public void LegacyListOfWorkloadsWithSingularIp()
    {
        const string yaml = """
            - name: local
              namespace: default
              serviceAccount: default
              workloadIp: "127.0.0.1"
              protocol: HBONE
              node: local
            - name: local-tcp
              namespace: default
              workloadIp: "127.0.0.2"
              tunnelProtocol: NONE
              node: local
            """;
        ConfigLoadResult result = ConfigLoader.Parse(yaml, "old.yaml");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Equal(2, result.Config!.Workloads.Length);
        Assert.Equal("Kubernetes//v1/Pod/default/local", result.Config.Workloads[0].Uid);
        Assert.Equal(InboundProtocol.Tcp, result.Config.Workloads[1].Protocol);
    }

    /// <summary>
    /// Issue 13: an empty file is what a truncated or half-written config looks like; applying it would drop every
    /// workload and policy at once. It is an error, with a message that says how to write an empty mesh on purpose.
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData("   \n")]
    [InlineData("# only a comment\n")]
    [InlineData("---\n")]
    public void EmptyFileIsAnErrorThatSaysHowToWriteAnEmptyMesh(string yaml)
    {
        ConfigLoadResult result = ConfigLoader.Parse(yaml, "empty.yaml");
        Assert.False(result.Ok);
        ConfigError error = Assert.Single(result.Errors);
        Assert.Equal("empty.yaml", error.File);
        Assert.Contains("the config file is empty", error.Message, StringComparison.Ordinal);
        Assert.Contains("write {}", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("workloads: []")]
    public void AnExplicitlyEmptyMeshIsValid(string yaml)
    {
        ConfigLoadResult result = ConfigLoader.Parse(yaml, "empty.yaml");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Empty(result.Config!.Workloads);
    }

    /// <summary>Issue 13: a folder given as the config file says so (the OS says "permission denied").</summary>
    [Fact]
    public void AFolderIsCalledAFolder()
    {
        string dir = Directory.CreateTempSubdirectory("ambient-cfg-dir-").FullName;
        try
        {
            ConfigLoadResult result = ConfigLoader.LoadFile(dir);
            ConfigError error = Assert.Single(result.Errors);
            Assert.Contains("it is a folder, not a file", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir);
        }
    }

    [Fact]
    public void EveryProjectKey()
    {
        string dir = Directory.CreateTempSubdirectory("ambient-cfg-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "ca.pem"), "x");
            File.WriteAllText(Path.Combine(dir, "ca.key"), "x");
            const string yaml = """
                trustDomain: example.org
                ca:
                  certFile: ca.pem
                  keyFile: ca.key
                mode: inpod
                listeners:
                  outbound: 127.0.0.1:25001
                  inbound: 0.0.0.0:25006
                  hbone: "[::]:25008"
                  socks5: 127.0.0.1:25080
                admin: 127.0.0.1:25000
                metrics: "[::1]:25020"
                readiness: 0.0.0.0:0
                accessLog: json
                certificateLifetime: 1h30m
                drainTimeout: 500ms
                hboneIdleTimeout: 90s
                stateDir: state
                """;
            string file = Path.Combine(dir, "config.yaml");
            File.WriteAllText(file, yaml);
            ConfigLoadResult result = ConfigLoader.LoadFile(file);
            Assert.True(result.Ok, string.Join("\n", result.Errors));
            MeshConfig c = result.Config!;
            Assert.Equal("example.org", c.TrustDomain);
            Assert.Equal(Path.Combine(dir, "ca.pem"), c.CaCertFile);
            Assert.Equal(Path.Combine(dir, "ca.key"), c.CaKeyFile);
            Assert.Equal(AgentMode.InPod, c.Mode);
            Assert.Equal(IPEndPoint.Parse("127.0.0.1:25001"), c.Listeners.Outbound);
            Assert.Equal(IPEndPoint.Parse("0.0.0.0:25006"), c.Listeners.Inbound);
            Assert.Equal(new IPEndPoint(IPAddress.IPv6Any, 25008), c.Listeners.Hbone);
            Assert.Equal(IPEndPoint.Parse("127.0.0.1:25080"), c.Listeners.Socks5);
            Assert.Equal(IPEndPoint.Parse("127.0.0.1:25000"), c.Listeners.Admin);
            Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 25020), c.Listeners.Metrics);
            Assert.Equal(new IPEndPoint(IPAddress.Any, 0), c.Listeners.Readiness);
            Assert.Equal(AccessLogFormat.Json, c.AccessLog);
            Assert.Equal(TimeSpan.FromMinutes(90), c.CertificateLifetime);
            Assert.Equal(TimeSpan.FromMilliseconds(500), c.DrainTimeout);
            Assert.Equal(TimeSpan.FromSeconds(90), c.HboneIdleTimeout);
            Assert.Equal(Path.Combine(dir, "state"), c.StateDir);
            Assert.Equal(file, c.SourcePath);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void DefaultsWhenProjectKeysAreAbsent()
    {
        MeshConfig c = ConfigLoader.Parse("workloads: []\n", "c.yaml").Config!;
        Assert.Equal(new MeshConfig { SourcePath = "c.yaml" }, c with { Workloads = [], Services = [], Policies = [] });
        Assert.Equal(15008, c.Listeners.Hbone.Port);
        Assert.Equal(TimeSpan.FromHours(24), c.CertificateLifetime);
        Assert.Equal(TimeSpan.FromMinutes(10), c.HboneIdleTimeout);
        Assert.Equal(AgentMode.Shared, c.Mode);
    }

    [Theory]
    [InlineData("30s", 30_000)]
    [InlineData("90m", 5_400_000)]
    [InlineData("24h", 86_400_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("1h0m30s", 3_630_000)]
    [InlineData("0", 0)]
    public void DurationForms(string text, long ms)
    {
        ConfigLoadResult result = ConfigLoader.Parse($"drainTimeout: \"{text}\"\n", "c.yaml");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Equal(TimeSpan.FromMilliseconds(ms), result.Config!.DrainTimeout);
    }

    [Fact]
    public void LoadFileNeverThrowsForMissingFile()
    {
        ConfigLoadResult result = ConfigLoader.LoadFile("/nonexistent/dir/config.yaml");
        Assert.False(result.Ok);
        ConfigError e = Assert.Single(result.Errors);
        Assert.Contains("file not found", e.Message);
        Assert.Equal("/nonexistent/dir/config.yaml", e.File);
    }

    [Fact]
    public void ErrorToStringNamesFileLineAndField()
    {
        ConfigLoadResult result = ConfigLoader.Parse("mode: sidecar\n", "agent.yaml");
        Assert.Equal("agent.yaml:1:7: mode: 'sidecar' is not one of: shared, inpod, in-pod", Assert.Single(result.Errors).ToString());
    }
}
