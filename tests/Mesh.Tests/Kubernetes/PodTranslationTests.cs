using System.Net;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Model;
using static Ambient.Mesh.Tests.Kubernetes.KubeTestUtil;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>Pods become workloads with Istio's semantics: enrollment labels, identity, addresses, health, names.</summary>
public sealed class PodTranslationTests
{
    // Istio's enrollment: the pod's own istio.io/dataplane-mode wins; "none" opts a pod out of an ambient
    // namespace; "ambient" enrolls a pod alone; no label follows the namespace.
    [Theory]
    [InlineData("istio.io/dataplane-mode: ambient", "", InboundProtocol.Hbone)]
    [InlineData("istio.io/dataplane-mode: ambient", "istio.io/dataplane-mode: none", InboundProtocol.Tcp)]
    [InlineData("", "istio.io/dataplane-mode: ambient", InboundProtocol.Hbone)]
    [InlineData("", "", InboundProtocol.Tcp)]
    [InlineData("istio.io/dataplane-mode: none", "", InboundProtocol.Tcp)]
    [InlineData("istio.io/dataplane-mode: none", "istio.io/dataplane-mode: ambient", InboundProtocol.Hbone)]
    public void EnrollmentFollowsNamespaceAndPodLabels(string namespaceLabel, string podLabel, InboundProtocol expected)
    {
        string labels = podLabel.Length == 0 ? "app: web" : $"app: web, {podLabel}";
        TranslationResult r = TranslateOk(Namespace("shop", namespaceLabel) + RunningPod("shop", "web-0", "10.244.1.5", labels));
        Assert.Equal(expected, r.Pod("shop", "web-0").Protocol);
    }

    [Fact]
    public void HostNetworkAndSidecarPodsAreNeverEnrolled()
    {
        string yaml = Namespace("shop", "istio.io/dataplane-mode: ambient")
            + RunningPod("shop", "agent-0", "192.168.1.10", "app: agent", "  hostNetwork: true")
            + """
            apiVersion: v1
            kind: Pod
            metadata:
              name: legacy-0
              namespace: shop
              labels: {app: legacy}
              annotations:
                sidecar.istio.io/status: '{"containers":["istio-proxy"]}'
            spec:
              containers: [{name: app, image: legacy}]
            """;
        TranslationResult r = TranslateOk(yaml);
        Workload agent = r.Pod("shop", "agent-0");
        Assert.Equal((InboundProtocol.Tcp, NetworkMode.HostNetwork), (agent.Protocol, agent.NetworkMode));
        Assert.Equal(InboundProtocol.Tcp, r.Pod("shop", "legacy-0").Protocol);
    }

    [Fact]
    public void PodFromTheApiServerBecomesAFullWorkload()
    {
        // What `kubectl get pod -o yaml` shows for a Deployment's dual-stack pod (trimmed).
        const string yaml = """
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
              labels: {istio.io/dataplane-mode: ambient, topology.istio.io/network: net-1}
            ---
            apiVersion: v1
            kind: Node
            metadata:
              name: node-b
              labels:
                topology.kubernetes.io/region: eu-west1
                topology.kubernetes.io/zone: eu-west1-b
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: reviews-v2-7d9c8b5f4-x2k8p
              generateName: reviews-v2-7d9c8b5f4-
              namespace: shop
              uid: 0d1e2f3a-1111-4222-8333-444455556666
              labels:
                app: reviews
                version: v2
                pod-template-hash: 7d9c8b5f4
              ownerReferences:
              - apiVersion: apps/v1
                kind: ReplicaSet
                name: reviews-v2-7d9c8b5f4
                uid: 9a8b7c6d-0000-4000-8000-000000000000
                controller: true
                blockOwnerDeletion: true
            spec:
              serviceAccountName: bookinfo-reviews
              nodeName: node-b
              containers:
              - name: reviews
                image: docker.io/istio/examples-bookinfo-reviews-v2:1.20.2
                ports: [{containerPort: 9080, protocol: TCP}]
            status:
              phase: Running
              podIP: 10.244.2.17
              podIPs:
              - ip: 10.244.2.17
              - ip: fd00:10:244:2::11
              conditions:
              - {type: Initialized, status: "True"}
              - {type: Ready, status: "True"}
              - {type: ContainersReady, status: "True"}
            """;
        Workload w = TranslateOk(yaml).Pod("shop", "reviews-v2-7d9c8b5f4-x2k8p");
        Assert.Equal("reviews-v2-7d9c8b5f4-x2k8p", w.Name);
        Assert.Equal("bookinfo-reviews", w.ServiceAccount);
        Assert.Equal("node-b", w.Node);
        Assert.Equal([IPAddress.Parse("10.244.2.17"), IPAddress.Parse("fd00:10:244:2::11")], w.WorkloadIps.ToArray());
        Assert.Equal(InboundProtocol.Hbone, w.Protocol);
        Assert.Equal(HealthStatus.Healthy, w.Status);
        Assert.Equal(("reviews-v2", "deployment"), (w.WorkloadName, w.WorkloadType));
        Assert.Equal(("reviews", "v2"), (w.CanonicalName, w.CanonicalRevision));
        Assert.Equal("Kubernetes", w.ClusterId);
        Assert.Equal("net-1", w.Network);
        Assert.Equal(new Locality("eu-west1", "eu-west1-b", ""), w.Locality);
        Assert.Equal("v2", w.Labels["version"]);
        Assert.Equal("spiffe://cluster.local/ns/shop/sa/bookinfo-reviews", w.SpiffeId("cluster.local"));
    }

    [Fact]
    public void HandWrittenPodWithoutStatusHasNoIpsAndIsHealthy()
    {
        const string yaml = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: client
              namespace: shop
            spec:
              containers: [{name: curl, image: curlimages/curl}]
            """;
        Workload w = TranslateOk(yaml, new KubeTranslatorOptions { ClusterId = "cluster-east" }).Resources.Workloads.Single();
        Assert.Equal("cluster-east//Pod/shop/client", w.Uid); // stable without metadata.uid
        Assert.Empty(w.WorkloadIps);
        Assert.Equal(HealthStatus.Healthy, w.Status);
        Assert.Equal("default", w.ServiceAccount);
        Assert.Equal(("client", "pod"), (w.WorkloadName, w.WorkloadType));
        Assert.Equal(("client", "latest"), (w.CanonicalName, w.CanonicalRevision));
    }

    [Fact]
    public void ManifestWithoutNamespaceMeansDefault()
    {
        const string yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: lonely}\nspec: {containers: [{name: a, image: b}]}\n";
        Assert.Equal("default", TranslateOk(yaml).Pod("default", "lonely").Namespace);
    }

    [Theory]
    [InlineData("{type: Ready, status: \"False\"}", "", HealthStatus.Unhealthy)]
    [InlineData("{type: Ready, status: \"True\"}", "", HealthStatus.Healthy)]
    [InlineData("{type: PodScheduled, status: \"True\"}", "", HealthStatus.Healthy)]
    [InlineData("{type: Ready, status: \"True\"}", "deletionTimestamp: \"2025-01-01T00:00:00Z\"", HealthStatus.Unhealthy)]
    public void ReadinessBecomesHealth(string condition, string metadataExtra, HealthStatus expected)
    {
        string yaml = $$"""
            apiVersion: v1
            kind: Pod
            metadata:
              name: web-0
              namespace: shop
              {{metadataExtra}}
            spec: {containers: [{name: a, image: b}]}
            status:
              phase: Running
              podIP: 10.0.0.9
              conditions: [{{condition}}]
            """;
        Assert.Equal(expected, TranslateOk(yaml).Pod("shop", "web-0").Status);
    }

    [Fact]
    public void FinishedPodsAreNotWorkloads()
    {
        const string yaml = """
            apiVersion: v1
            kind: Pod
            metadata: {name: migrate-x7, namespace: shop}
            spec: {containers: [{name: a, image: b}]}
            status: {phase: Succeeded, podIP: 10.0.0.9}
            """;
        Assert.Empty(TranslateOk(yaml).Resources.Workloads);
    }

    [Theory]
    [InlineData("service.istio.io/canonical-name: shop-web, service.istio.io/canonical-revision: canary, app.kubernetes.io/name: ignored, app: ignored, version: v9", "shop-web", "canary")]
    [InlineData("app.kubernetes.io/name: web, app.kubernetes.io/version: 1.2.3, app: ignored, version: ignored", "web", "1.2.3")]
    [InlineData("app: web, version: v1", "web", "v1")]
    [InlineData("tier: frontend", "frontend-x", "latest")]
    public void CanonicalNameAndRevisionFollowIstiosLabelOrder(string labels, string name, string revision)
    {
        Workload w = TranslateOk(RunningPod("shop", "frontend-x", "10.0.0.3", labels)).Pod("shop", "frontend-x");
        Assert.Equal((name, revision), (w.CanonicalName, w.CanonicalRevision));
    }

    [Theory]
    [InlineData("Job", "backup-28930140", "", "backup", "cronjob")]
    [InlineData("Job", "migrate", "", "migrate", "job")]
    [InlineData("StatefulSet", "db", "", "db", "pod")]
    [InlineData("ReplicaSet", "web-5c9f8", "5c9f8", "web", "deployment")]
    [InlineData("ReplicaSet", "standalone-rs", "abc12", "standalone-rs", "pod")]
    public void WorkloadNameComesFromTheControllingOwner(string ownerKind, string ownerName, string hash, string name, string type)
    {
        string yaml = $$"""
            apiVersion: v1
            kind: Pod
            metadata:
              name: {{ownerName}}-zz9
              generateName: {{ownerName}}-
              namespace: ops
              labels: {{(hash.Length > 0 ? $"{{pod-template-hash: {hash}}}" : "{}")}}
              ownerReferences:
              - {apiVersion: v1, kind: {{ownerKind}}, name: {{ownerName}}, uid: 1, controller: true}
            spec: {containers: [{name: a, image: b}]}
            """;
        Workload w = TranslateOk(yaml).Pod("ops", $"{ownerName}-zz9");
        Assert.Equal((name, type), (w.WorkloadName, w.WorkloadType));
    }

    [Fact]
    public void PodLocalityLabelOverridesItsNode()
    {
        string yaml = RunningPod("shop", "web-0", "10.0.0.3", "app: web, istio-locality: us-east1.us-east1-c.rack4");
        Assert.Equal(new Locality("us-east1", "us-east1-c", "rack4"), TranslateOk(yaml).Pod("shop", "web-0").Locality);
    }
}
