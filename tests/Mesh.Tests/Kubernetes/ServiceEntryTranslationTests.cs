using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Model;
using static Ambient.Mesh.Tests.Kubernetes.KubeTestUtil;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>Istio ServiceEntry and WorkloadEntry (networking.istio.io v1, v1beta1 and v1alpha3).</summary>
public sealed class ServiceEntryTranslationTests
{
    [Theory]
    [InlineData("networking.istio.io/v1")]
    [InlineData("networking.istio.io/v1beta1")]
    [InlineData("networking.istio.io/v1alpha3")]
    public void ServiceEntryWithInlineEndpointsGivesServicesAndWorkloads(string apiVersion)
    {
        string yaml = $$"""
            apiVersion: {{apiVersion}}
            kind: ServiceEntry
            metadata: {name: legacy-db, namespace: shop}
            spec:
              hosts: [db.legacy.example, db-replica.legacy.example]
              addresses: [240.240.0.10]
              location: MESH_INTERNAL
              resolution: STATIC
              subjectAltNames: ["spiffe://legacy.example/ns/db/sa/postgres"]
              ports:
              - {number: 5432, name: tcp-pg, protocol: TCP, targetPort: 6432}
              - {number: 9187, name: http-metrics, protocol: HTTP}
              endpoints:
              - address: 192.168.50.11
                labels: {app: legacy-db, version: "13"}
                serviceAccount: postgres
                network: vm-net
                locality: us-east1/us-east1-b/rack2
                weight: 3
                ports: {tcp-pg: 7432}
              - address: 192.168.50.12
            """;
        TranslationResult r = TranslateOk(yaml);
        Service s = r.Service("shop", "db.legacy.example");
        Assert.Equal("legacy-db", s.Name);
        Assert.Equal(IPAddress.Parse("240.240.0.10"), Assert.Single(s.Vips).Address);
        Assert.Equal(new Dictionary<int, int> { [5432] = 6432, [9187] = 9187 }, s.Ports);
        Assert.Equal(["spiffe://legacy.example/ns/db/sa/postgres"], s.SubjectAltNames.ToArray());
        r.Service("shop", "db-replica.legacy.example");

        Workload first = Assert.Single(r.Resources.Workloads, w => w.Uid == "Kubernetes/networking.istio.io/ServiceEntry/shop/legacy-db/192.168.50.11");
        Assert.Equal([IPAddress.Parse("192.168.50.11")], first.WorkloadIps.ToArray());
        Assert.Equal(("postgres", "vm-net", 3), (first.ServiceAccount, first.Network, first.Capacity));
        Assert.Equal(new Locality("us-east1", "us-east1-b", "rack2"), first.Locality);
        Assert.Equal(("legacy-db", "13"), (first.CanonicalName, first.CanonicalRevision));
        Assert.Equal(InboundProtocol.Tcp, first.Protocol);
        // The endpoint's own port of the same name wins over the entry's targetPort.
        Assert.Equal(new Dictionary<int, int> { [5432] = 7432, [9187] = 9187 }, first.Services["shop/db.legacy.example"]);
        Assert.Equal(new Dictionary<int, int> { [5432] = 7432, [9187] = 9187 }, first.Services["shop/db-replica.legacy.example"]);

        Workload second = Assert.Single(r.Resources.Workloads, w => w.Uid.EndsWith("/192.168.50.12", StringComparison.Ordinal));
        Assert.Equal(("default", 1), (second.ServiceAccount, second.Capacity));
        Assert.Equal(new Dictionary<int, int> { [5432] = 6432, [9187] = 9187 }, second.Services["shop/db.legacy.example"]);
    }

    [Fact]
    public void WorkloadSelectorJoinsPodsAndWorkloadEntries()
    {
        string yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: vm-api, namespace: shop}
            spec:
              hosts: [api.vm.internal]
              addresses: [240.240.0.20]
              resolution: STATIC
              ports: [{number: 80, name: http, targetPort: 8080}]
              workloadSelector: {labels: {app: vm-api}}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: vm-1, namespace: shop}
            spec:
              address: 10.128.0.7
              labels: {app: vm-api, istio.io/dataplane-mode: ambient}
              serviceAccount: vm-api
              ports: {http: 18080}
            ---

            """ + RunningPod("shop", "vm-api-pod", "10.244.0.3", "app: vm-api") + RunningPod("shop", "other", "10.244.0.4", "app: other");
        TranslationResult r = TranslateOk(yaml);
        const string key = "shop/api.vm.internal";
        Assert.Equal(8080, r.Pod("shop", "vm-api-pod").Services[key][80]);
        Assert.Empty(r.Pod("shop", "other").Services);
        Workload vm = Assert.Single(r.Resources.Workloads, w => w.Uid == "Kubernetes/networking.istio.io/WorkloadEntry/shop/vm-1");
        Assert.Equal(18080, vm.Services[key][80]); // the WorkloadEntry's port named like the entry's port
        Assert.Equal(("vm-api", InboundProtocol.Hbone), (vm.ServiceAccount, vm.Protocol));
        Assert.Equal([IPAddress.Parse("10.128.0.7")], vm.WorkloadIps.ToArray());
    }

    [Fact]
    public void KubernetesServiceSelectsWorkloadEntriesWithNamedTargetPorts()
    {
        const string yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: reviews, namespace: shop}
            spec: {clusterIP: 10.96.3.3, selector: {app: reviews}, ports: [{name: http, port: 9080, targetPort: web}]}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: reviews-vm, namespace: shop}
            spec:
              address: 10.128.0.9
              labels: {app: reviews, version: v3}
              ports: {web: 19080}
              weight: 5
              locality: eu-west1/eu-west1-a
            """;
        Workload vm = TranslateOk(yaml).Resources.Workloads.Single();
        Assert.Equal(19080, vm.Services["shop/reviews.shop.svc.cluster.local"][9080]);
        Assert.Equal((5, "reviews", "v3"), (vm.Capacity, vm.CanonicalName, vm.CanonicalRevision));
        Assert.Equal(new Locality("eu-west1", "eu-west1-a", ""), vm.Locality);
        Assert.Equal(InboundProtocol.Tcp, vm.Protocol);
    }

    [Fact]
    public void DnsEntryWithoutEndpointsResolvesEachHostByName()
    {
        const string yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: httpbin-ext, namespace: shop}
            spec:
              hosts: [httpbin.org]
              location: MESH_EXTERNAL
              resolution: DNS
              ports: [{number: 443, name: tls, protocol: TLS}]
            """;
        TranslationResult r = TranslateOk(yaml);
        Workload w = Assert.Single(r.Resources.Workloads);
        Assert.Equal(("Kubernetes/networking.istio.io/ServiceEntry/shop/httpbin-ext/httpbin.org", "httpbin.org"), (w.Uid, w.Hostname));
        Assert.Empty(w.WorkloadIps);
        Assert.Equal(443, w.Services["shop/httpbin.org"][443]);
    }

    [Fact]
    public void ServiceEntryUsesAWaypointByLabel()
    {
        string yaml = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: {name: egress, namespace: shop}
            spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: ext, namespace: shop, labels: {istio.io/use-waypoint: egress}}
            spec: {hosts: [api.example.com], resolution: DNS, ports: [{number: 443, name: tls}]}
            """;
        Assert.Equal("egress.shop.svc.cluster.local", TranslateOk(yaml).Service("shop", "api.example.com").Waypoint?.Hostname);
    }

    [Fact]
    public void AddressRangeIsAWarningAndHostTakenByAServiceIsAnError()
    {
        const string yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: shop}
            spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: shadow, namespace: shop}
            spec:
              hosts: [web.shop.svc.cluster.local, shadow.example]
              addresses: [10.50.0.0/16]
              resolution: NONE
              ports: [{number: 80, name: http}]
            """;
        TranslationResult r = Translate(yaml);
        ConfigError e = r.SingleError();
        Assert.Equal("ServiceEntry shop/shadow: spec.hosts", e.Field);
        Assert.Contains("already defined", e.Message, StringComparison.Ordinal);
        Assert.Empty(r.Service("shop", "web.shop.svc.cluster.local").Vips.Where(v => v.Address.ToString() == "10.50.0.0"));
        Assert.Empty(r.Service("shop", "shadow.example").Vips);
        Assert.Contains(r.Warnings, w => w.Field == "ServiceEntry shop/shadow: spec.addresses[0]" && w.Line == 11);
    }

    [Theory]
    [InlineData("  hosts: []\n  ports: [{number: 80}]", "spec.hosts", "at least one host")]
    [InlineData("  hosts: [a.example]\n  resolution: STATIC\n  endpoints: [{address: db.example}]", "spec.endpoints[0].address", "resolution: DNS")]
    [InlineData("  hosts: [a.example]\n  resolution: MAGIC", "spec.resolution", "not one of: NONE, STATIC, DNS, DNS_ROUND_ROBIN")]
    [InlineData("  hosts: [a.example]\n  ports: [{number: http}]", "spec.ports[0].number", "not an integer")]
    [InlineData("  hosts: [a.example]\n  workloadSelector: {labels: {app: a}}\n  endpoints: [{address: 10.0.0.1}]", "spec.workloadSelector", "mutually exclusive")]
    public void BadServiceEntriesAreErrors(string spec, string field, string message)
    {
        string yaml = $"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: se, namespace: shop}}\nspec:\n{spec}\n";
        ConfigError e = Translate(yaml).SingleError();
        Assert.Equal($"ServiceEntry shop/se: {field}", e.Field);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WorkloadEntryWithoutAddressIsAnError()
    {
        const string yaml = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm, namespace: shop}\nspec: {labels: {app: a}}\n";
        TranslationResult r = Translate(yaml);
        Assert.Equal(("WorkloadEntry shop/vm: spec.address", 4), (r.SingleError().Field, r.SingleError().Line));
        Assert.Empty(r.Resources.Workloads);
    }
}
