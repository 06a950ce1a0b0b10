using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Model;
using static Ambient.Mesh.Tests.Kubernetes.KubeTestUtil;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>Services: hostnames, VIPs, ports (named target ports per pod), selector and EndpointSlice endpoints.</summary>
public sealed class ServiceTranslationTests
{
    private const string DualStackService = """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: shop
        spec:
          type: ClusterIP
          ipFamilyPolicy: PreferDualStack
          clusterIP: 10.96.10.20
          clusterIPs: [10.96.10.20, "fd00:10:96::a14"]
          selector: {app: web}
          ports:
          - {name: http, port: 80, targetPort: http, protocol: TCP}
          - {name: metrics, port: 9090, targetPort: 9091}
          - {name: admin, port: 8443}
        ---

        """;

    [Fact]
    public void ServiceGetsHostnameVipsOfBothFamiliesAndPorts()
    {
        Service s = TranslateOk(DualStackService).Service("shop", "web.shop.svc.cluster.local");
        Assert.Equal(("web", "shop"), (s.Name, s.Namespace));
        Assert.Equal([new NetworkAddress("", IPAddress.Parse("10.96.10.20")), new NetworkAddress("", IPAddress.Parse("fd00:10:96::a14"))], s.Vips.ToArray());
        // Named target ports are resolved per workload, so the service itself says 0; a missing targetPort is the port.
        Assert.Equal(new Dictionary<int, int> { [80] = 0, [9090] = 9091, [8443] = 8443 }, s.Ports);
        Assert.Null(s.Waypoint);
    }

    [Fact]
    public void EachPortRecordsItsDeclaredProtocolAppProtocolFirst()
    {
        const string manifest = """
            apiVersion: v1
            kind: Service
            metadata: {name: db, namespace: shop}
            spec:
              clusterIP: 10.96.10.30
              ports:
              - {name: http-api, port: 80}
              - {name: web, port: 81, appProtocol: MySQL}
              - {name: tcp-metrics, port: 9100, appProtocol: kubernetes.io/h2c}
              - {port: 7000}
            """;
        Service s = TranslateOk(manifest).Service("shop", "db.shop.svc.cluster.local");
        // appProtocol wins over the name (lower-cased); a port with neither declares nothing.
        Assert.Equal(new Dictionary<int, string> { [80] = "http-api", [81] = "mysql", [9100] = "kubernetes.io/h2c" }, s.PortProtocols);
    }

    [Fact]
    public void ServiceEntryPortsDeclareTheirProtocolField()
    {
        const string manifest = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: ext, namespace: shop}
            spec:
              hosts: [db.example.com]
              addresses: [10.96.10.40]
              ports:
              - {number: 5432, name: pg, protocol: TCP}
              - {number: 80, name: http-web}
              resolution: STATIC
            """;
        Service s = TranslateOk(manifest).Service("shop", "db.example.com");
        Assert.Equal(new Dictionary<int, string> { [5432] = "tcp", [80] = "http-web" }, s.PortProtocols);
    }

    [Fact]
    public void DomainSuffixOptionChangesHostnames()
    {
        var options = new KubeTranslatorOptions { DomainSuffix = "corp.internal" };
        Assert.Single(TranslateOk(DualStackService, options).Resources.Services, s => s.Hostname == "web.shop.svc.corp.internal");
    }

    [Fact]
    public void NamedTargetPortIsResolvedAgainstEachPodsContainerPorts()
    {
        string yaml = DualStackService
            + RunningPod("shop", "web-0", "10.244.0.5", "app: web") // http -> 8080 (see RunningPod)
            + """
            apiVersion: v1
            kind: Pod
            metadata: {name: web-canary, namespace: shop, labels: {app: web, track: canary}}
            spec:
              containers:
              - name: app
                image: web:2
                ports: [{name: http, containerPort: 8181}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: web-bare, namespace: shop, labels: {app: web}}
            spec:
              containers: [{name: app, image: web:0}]
            """;
        TranslationResult r = TranslateOk(yaml);
        const string key = "shop/web.shop.svc.cluster.local";
        Assert.Equal(new Dictionary<int, int> { [80] = 8080, [9090] = 9091, [8443] = 8443 }, r.Pod("shop", "web-0").Services[key]);
        Assert.Equal(new Dictionary<int, int> { [80] = 8181, [9090] = 9091, [8443] = 8443 }, r.Pod("shop", "web-canary").Services[key]);
        // No container port named "http": that pod does not serve port 80 of the service (Istio leaves it out).
        Assert.Equal(new Dictionary<int, int> { [9090] = 9091, [8443] = 8443 }, r.Pod("shop", "web-bare").Services[key]);
    }

    [Fact]
    public void SelectorPicksOnlyMatchingPodsOfItsOwnNamespace()
    {
        string yaml = DualStackService
            + RunningPod("shop", "web-0", "10.244.0.5", "app: web, version: v1")
            + RunningPod("shop", "api-0", "10.244.0.6", "app: api")
            + RunningPod("other", "web-0", "10.244.0.7", "app: web");
        TranslationResult r = TranslateOk(yaml);
        Assert.True(r.Pod("shop", "web-0").Services.ContainsKey("shop/web.shop.svc.cluster.local"));
        Assert.Empty(r.Pod("shop", "api-0").Services);
        Assert.Empty(r.Pod("other", "web-0").Services);
    }

    [Fact]
    public void ServiceWithoutSelectorOrSlicesHasNoEndpoints()
    {
        const string yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: external-db, namespace: shop}
            spec:
              clusterIP: 10.96.0.50
              ports: [{port: 5432}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: db-0, namespace: shop, labels: {app: db}}
            spec: {containers: [{name: a, image: b}]}
            """;
        Assert.Empty(TranslateOk(yaml).Pod("shop", "db-0").Services);
    }

    [Fact]
    public void HeadlessServiceHasNoVip()
    {
        const string yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: db, namespace: shop}
            spec:
              clusterIP: None
              clusterIPs: [None]
              selector: {app: db}
              ports: [{name: pg, port: 5432}]
            """;
        Assert.Empty(TranslateOk(yaml).Service("shop", "db.shop.svc.cluster.local").Vips);
    }

    [Fact]
    public void LoadBalancerIngressIpsAreVipsToo()
    {
        const string yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: front, namespace: shop}
            spec:
              type: LoadBalancer
              clusterIP: 10.96.0.80
              selector: {app: front}
              ports: [{port: 443, targetPort: 8443}]
            status:
              loadBalancer:
                ingress: [{ip: 203.0.113.7}, {hostname: lb.example.com}]
            """;
        Service s = TranslateOk(yaml).Service("shop", "front.shop.svc.cluster.local");
        Assert.Equal([IPAddress.Parse("10.96.0.80"), IPAddress.Parse("203.0.113.7")], s.Vips.Select(v => v.Address));
    }

    [Fact]
    public void TcpAndUdpOnOnePortGiveOneEntry()
    {
        const string yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: dns, namespace: kube-system}
            spec:
              clusterIP: 10.96.0.10
              selector: {k8s-app: kube-dns}
              ports:
              - {name: dns, port: 53, protocol: UDP, targetPort: 53}
              - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
              - {name: metrics, port: 9153, protocol: TCP, targetPort: 9153}
            """;
        Assert.Equal(new Dictionary<int, int> { [53] = 53, [9153] = 9153 }, TranslateOk(yaml).Service("kube-system", "dns.kube-system.svc.cluster.local").Ports);
    }

    [Theory]
    [InlineData("trafficDistribution: PreferClose", LoadBalancingMode.Failover, new[] { LoadBalancingScope.Network, LoadBalancingScope.Region, LoadBalancingScope.Zone, LoadBalancingScope.Subzone })]
    [InlineData("internalTrafficPolicy: Local", LoadBalancingMode.Strict, new[] { LoadBalancingScope.Node })]
    public void TrafficPoliciesBecomeLoadBalancing(string specLine, LoadBalancingMode mode, LoadBalancingScope[] scopes)
    {
        string yaml = $$"""
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: shop}
            spec:
              clusterIP: 10.96.0.1
              {{specLine}}
              ports: [{port: 80}]
            """;
        LoadBalancing lb = TranslateOk(yaml).Service("shop", "web.shop.svc.cluster.local").LoadBalancing!;
        Assert.Equal(mode, lb.Mode);
        Assert.Equal(scopes, lb.RoutingPreference.ToArray());
    }

    [Fact]
    public void PublishNotReadyAddressesAllowsUnhealthyEndpoints()
    {
        const string yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: peers, namespace: db}
            spec: {clusterIP: None, publishNotReadyAddresses: true, selector: {app: db}, ports: [{port: 7000}]}
            """;
        Assert.Equal(LoadBalancingHealthPolicy.AllowAll, TranslateOk(yaml).Service("db", "peers.db.svc.cluster.local").LoadBalancing!.HealthPolicy);
    }

    [Fact]
    public void EndpointSlicesDecideEndpointsWhenPresent()
    {
        // A live cluster: the endpoint controller wrote slices. web-0 is in the slice (with the resolved target
        // port); web-1 matches the selector but is not in the slice (yet), so it is not an endpoint; the address
        // without a pod (an IPv6 slice of a VM) becomes a workload of its own.
        string yaml = DualStackService
            + RunningPod("shop", "web-0", "10.244.0.5", "app: web")
            + RunningPod("shop", "web-1", "10.244.0.6", "app: web")
            + """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-abc12
              namespace: shop
              labels: {kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io}
            addressType: IPv4
            endpoints:
            - addresses: [10.244.0.5]
              conditions: {ready: true, serving: true, terminating: false}
              nodeName: node-a
              targetRef: {kind: Pod, name: web-0, namespace: shop, uid: 1}
            ports:
            - {name: http, port: 8080, protocol: TCP}
            - {name: metrics, port: 9091, protocol: TCP}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-v6
              namespace: shop
              labels: {kubernetes.io/service-name: web}
            addressType: IPv6
            endpoints:
            - addresses: ["fd00::77"]
              conditions: {ready: false}
            ports:
            - {name: http, port: 8080}
            """;
        TranslationResult r = TranslateOk(yaml);
        const string key = "shop/web.shop.svc.cluster.local";
        Assert.Equal(new Dictionary<int, int> { [80] = 8080, [9090] = 9091 }, r.Pod("shop", "web-0").Services[key]);
        Assert.False(r.Pod("shop", "web-1").Services.ContainsKey(key));
        Workload vm = Assert.Single(r.Resources.Workloads, w => w.Uid == "Kubernetes/discovery.k8s.io/EndpointSlice/shop/web-v6/fd00::77");
        Assert.Equal([IPAddress.Parse("fd00::77")], vm.WorkloadIps.ToArray());
        Assert.Equal(HealthStatus.Unhealthy, vm.Status);
        Assert.Equal(InboundProtocol.Tcp, vm.Protocol);
        Assert.Equal(new Dictionary<int, int> { [80] = 8080 }, vm.Services[key]);
    }

    [Fact]
    public void SlicesOfOtherServicesOrWithoutServiceLabelChangeNothing()
    {
        string yaml = DualStackService + RunningPod("shop", "web-0", "10.244.0.5", "app: web") + """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: random, namespace: shop}
            addressType: IPv4
            endpoints: [{addresses: [10.9.9.9]}]
            """;
        TranslationResult r = TranslateOk(yaml);
        Assert.True(r.Pod("shop", "web-0").Services.ContainsKey("shop/web.shop.svc.cluster.local"));
        Assert.Single(r.Resources.Workloads);
    }

    [Fact]
    public void ManyServicesAndPodsInOneNamespaceJoinCorrectly()
    {
        // The label index must find exactly the right services for each pod when a namespace is crowded.
        var sb = new System.Text.StringBuilder();
        for (int s = 0; s < 200; s++)
        {
            sb.Append($"apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{s}, namespace: big}}\nspec: {{clusterIP: 10.96.{s / 250}.{s % 250 + 1}, selector: {{app: app-{s}, tier: backend}}, ports: [{{port: 80, targetPort: 8080}}]}}\n---\n");
        }
        for (int p = 0; p < 1000; p++)
        {
            string tier = p % 10 == 0 ? "frontend" : "backend";
            sb.Append($"apiVersion: v1\nkind: Pod\nmetadata: {{name: pod-{p}, namespace: big, labels: {{app: app-{p % 200}, tier: {tier}, extra: x{p}}}}}\nspec: {{containers: [{{name: a, image: b}}]}}\n---\n");
        }
        TranslationResult r = TranslateOk(sb.ToString());
        for (int p = 0; p < 1000; p++)
        {
            Workload w = r.Pod("big", $"pod-{p}");
            if (p % 10 == 0)
            {
                Assert.Empty(w.Services);
            }
            else
            {
                Assert.Equal([$"big/svc-{p % 200}.big.svc.cluster.local"], w.Services.Keys);
            }
        }
    }

    [Fact]
    public void WorkloadServiceMapUsesTheSharedPortMapWhenNoPortIsNamed()
    {
        string yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: api, namespace: shop}
            spec: {clusterIP: 10.96.0.9, selector: {app: api}, ports: [{port: 80, targetPort: 8080}]}
            ---

            """ + RunningPod("shop", "api-0", "10.0.0.1", "app: api") + RunningPod("shop", "api-1", "10.0.0.2", "app: api");
        TranslationResult r = TranslateOk(yaml);
        ImmutableDictionary<int, int> a = r.Pod("shop", "api-0").Services["shop/api.shop.svc.cluster.local"];
        Assert.Same(a, r.Pod("shop", "api-1").Services["shop/api.shop.svc.cluster.local"]);
        Assert.Equal(8080, a[80]);
    }
}
