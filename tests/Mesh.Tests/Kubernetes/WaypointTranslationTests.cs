using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Model;
using static Ambient.Mesh.Tests.Kubernetes.KubeTestUtil;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>Waypoint Gateways, istio.io/use-waypoint precedence and istio.io/waypoint-for.</summary>
public sealed class WaypointTranslationTests
{
    private static readonly GatewayAddress ShopWaypoint = new("waypoint.shop.svc.cluster.local", "shop", null, "", 15008);

    // What `istioctl waypoint generate --for <for> -n shop` writes.
    private static string Waypoint(string ns = "shop", string name = "waypoint", string? forLabel = null, string allowedRoutes = "") => $$"""
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata:
          name: {{name}}
          namespace: {{ns}}
          labels: {{{(forLabel is null ? "" : $"istio.io/waypoint-for: {forLabel}")}}}
        spec:
          gatewayClassName: istio-waypoint
          listeners:
          - name: mesh
            port: 15008
            protocol: HBONE
        {{allowedRoutes}}
        ---

        """;

    private static string Service(string ns, string name, string labels = "") => $$"""
        apiVersion: v1
        kind: Service
        metadata:
          name: {{name}}
          namespace: {{ns}}
          labels: {{{labels}}}
        spec: {clusterIP: 10.96.1.{{name.Length}}, selector: {app: {{name}}}, ports: [{name: http, port: 80, targetPort: http}]}
        ---

        """;

    [Fact]
    public void WaypointGatewayBecomesAWaypointWithItsServiceAndPods()
    {
        string yaml = Namespace("shop", "istio.io/dataplane-mode: ambient") + Waypoint() + """
            apiVersion: v1
            kind: Pod
            metadata:
              name: waypoint-6c9d-abcde
              namespace: shop
              labels: {gateway.networking.k8s.io/gateway-name: waypoint, istio.io/dataplane-mode: none}
            spec:
              serviceAccountName: waypoint
              containers: [{name: istio-proxy, image: istio/proxyv2, ports: [{containerPort: 15008, name: mesh}]}]
            status: {phase: Running, podIP: 10.244.3.3, podIPs: [{ip: 10.244.3.3}], conditions: [{type: Ready, status: "True"}]}
            """;
        TranslationResult r = TranslateOk(yaml);
        Waypoint w = r.Object<Waypoint>("shop", "waypoint");
        Assert.Equal("Gateway/shop/waypoint", w.Key);
        Assert.Equal(WaypointTraffic.Service, w.For);
        Assert.Equal("spiffe://cluster.local/ns/shop/sa/waypoint", w.Identity);
        Assert.Equal("waypoint.shop.svc.cluster.local", w.ServiceHostname);
        Assert.Equal(new WaypointListener("mesh", 15008, "HBONE"), Assert.Single(w.Listeners));

        // No Service for it in the manifests: the one Istio would create is made, and the waypoint pod is its endpoint.
        Service s = r.Service("shop", "waypoint.shop.svc.cluster.local");
        Assert.Equal(15008, s.Ports[15008]);
        Assert.Null(s.Waypoint);
        Workload pod = r.Pod("shop", "waypoint-6c9d-abcde");
        Assert.Equal(15008, pod.Services["shop/waypoint.shop.svc.cluster.local"][15008]);
        Assert.Null(pod.Waypoint);
    }

    [Fact]
    public void ExistingWaypointServiceIsUsedAndNeverPointsAtItself()
    {
        // The Service Istio's deployment controller creates for the Gateway.
        string yaml = Namespace("shop", "istio.io/use-waypoint: waypoint") + Waypoint() + """
            apiVersion: v1
            kind: Service
            metadata:
              name: waypoint
              namespace: shop
              labels: {gateway.istio.io/managed: istio.io-mesh-controller, gateway.networking.k8s.io/gateway-name: waypoint}
            spec:
              clusterIP: 10.96.5.5
              selector: {gateway.networking.k8s.io/gateway-name: waypoint}
              ports:
              - {name: status-port, port: 15021, targetPort: 15021}
              - {name: mesh, port: 15008, targetPort: 15008}
            """;
        TranslationResult r = TranslateOk(yaml);
        Service s = r.Service("shop", "waypoint.shop.svc.cluster.local");
        Assert.Equal(IPAddress.Parse("10.96.5.5"), Assert.Single(s.Vips).Address);
        Assert.Null(s.Waypoint);
        Assert.Single(r.Resources.Services);
    }

    [Theory]
    // istio.io/waypoint-for decides which traffic the namespace-wide label sends through the waypoint.
    [InlineData(null, true, false)]
    [InlineData("service", true, false)]
    [InlineData("workload", false, true)]
    [InlineData("all", true, true)]
    [InlineData("none", false, false)]
    public void WaypointForDecidesWhoUsesIt(string? waypointFor, bool serviceUses, bool podUses)
    {
        string yaml = Namespace("shop", "istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint")
            + Waypoint(forLabel: waypointFor) + Service("shop", "web") + RunningPod("shop", "web-0", "10.244.0.9", "app: web");
        TranslationResult r = TranslateOk(yaml);
        Assert.Equal(serviceUses ? ShopWaypoint : null, r.Service("shop", "web.shop.svc.cluster.local").Waypoint);
        Assert.Equal(podUses ? ShopWaypoint : null, r.Pod("shop", "web-0").Waypoint);
    }

    [Fact]
    public void WaypointForCanComeFromTheGatewayClass()
    {
        string yaml = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: GatewayClass
            metadata: {name: istio-waypoint, labels: {istio.io/waypoint-for: all}}
            spec: {controllerName: istio.io/mesh-controller}
            ---

            """ + Namespace("shop", "istio.io/use-waypoint: waypoint") + Waypoint() + RunningPod("shop", "web-0", "10.0.0.1", "app: web");
        TranslationResult r = TranslateOk(yaml);
        Assert.Equal(WaypointTraffic.All, r.Object<Waypoint>("shop", "waypoint").For);
        Assert.Equal(ShopWaypoint, r.Pod("shop", "web-0").Waypoint);
    }

    [Fact]
    public void ObjectLabelOverridesNamespaceAndNoneOptsOut()
    {
        string yaml = Namespace("shop", "istio.io/use-waypoint: waypoint")
            + Waypoint(forLabel: "all") + Waypoint(name: "reviews-waypoint", forLabel: "all")
            + Service("shop", "web")
            + Service("shop", "reviews", "istio.io/use-waypoint: reviews-waypoint")
            + Service("shop", "healthz", "istio.io/use-waypoint: none")
            + RunningPod("shop", "web-0", "10.0.0.1", "app: web")
            + RunningPod("shop", "batch-0", "10.0.0.2", "app: batch, istio.io/use-waypoint: none")
            + RunningPod("shop", "reviews-0", "10.0.0.3", "app: reviews, istio.io/use-waypoint: reviews-waypoint");
        TranslationResult r = TranslateOk(yaml);
        GatewayAddress reviews = ShopWaypoint with { Hostname = "reviews-waypoint.shop.svc.cluster.local" };
        Assert.Equal(ShopWaypoint, r.Service("shop", "web.shop.svc.cluster.local").Waypoint);
        Assert.Equal(reviews, r.Service("shop", "reviews.shop.svc.cluster.local").Waypoint);
        Assert.Null(r.Service("shop", "healthz.shop.svc.cluster.local").Waypoint);
        Assert.Equal(ShopWaypoint, r.Pod("shop", "web-0").Waypoint);
        Assert.Null(r.Pod("shop", "batch-0").Waypoint);
        Assert.Equal(reviews, r.Pod("shop", "reviews-0").Waypoint);
    }

    [Fact]
    public void WaypointInAnotherNamespaceNeedsItsListenerToAllowIt()
    {
        string allowAll = "    allowedRoutes: {namespaces: {from: All}}";
        string allowSelected = "    allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {mesh-team: core}}}}";
        string yaml = Namespace("shop", "istio.io/use-waypoint: shared-waypoint, istio.io/use-waypoint-namespace: infra")
            + Namespace("billing", "mesh-team: core")
            + Namespace("labs")
            + Waypoint(ns: "infra", name: "shared-waypoint", allowedRoutes: allowAll)
            + Waypoint(ns: "infra", name: "core-waypoint", allowedRoutes: allowSelected)
            + Waypoint(ns: "infra", name: "private-waypoint")
            + Service("shop", "web")
            + Service("billing", "ledger", "istio.io/use-waypoint: core-waypoint, istio.io/use-waypoint-namespace: infra")
            + Service("labs", "toy", "istio.io/use-waypoint: core-waypoint, istio.io/use-waypoint-namespace: infra")
            + Service("labs", "secret", "istio.io/use-waypoint: private-waypoint, istio.io/use-waypoint-namespace: infra");
        TranslationResult r = TranslateOk(yaml);
        Assert.Equal(new GatewayAddress("shared-waypoint.infra.svc.cluster.local", "infra", null, "", 15008),
            r.Service("shop", "web.shop.svc.cluster.local").Waypoint);
        Assert.Equal("core-waypoint.infra.svc.cluster.local", r.Service("billing", "ledger.billing.svc.cluster.local").Waypoint?.Hostname);
        Assert.Null(r.Service("labs", "toy.labs.svc.cluster.local").Waypoint);
        Assert.Null(r.Service("labs", "secret.labs.svc.cluster.local").Waypoint);
        Assert.Equal(2, r.Warnings.Count(w => w.Message.Contains("do not allow namespace labs", StringComparison.Ordinal)));
    }

    [Fact]
    public void MissingWaypointIsOneWarningPerReferenceAndTrafficGoesDirect()
    {
        string yaml = Namespace("shop", "istio.io/use-waypoint: ghost")
            + Service("shop", "web") + Service("shop", "api")
            + RunningPod("shop", "web-0", "10.0.0.1", "app: web");
        TranslationResult r = TranslateOk(yaml);
        Assert.Null(r.Service("shop", "web.shop.svc.cluster.local").Waypoint);
        ConfigError w = Assert.Single(r.Warnings);
        Assert.Contains("no Gateway shop/ghost with gatewayClassName istio-waypoint", w.Message, StringComparison.Ordinal);
        Assert.StartsWith("Service shop/web", w.Field, StringComparison.Ordinal);
    }

    [Fact]
    public void BadWaypointForLabelIsAnErrorWithItsLine()
    {
        TranslationResult r = Translate(Waypoint(forLabel: "everything"));
        ConfigError e = r.SingleError();
        Assert.Equal((6, "Gateway shop/waypoint: metadata.labels[\"istio.io/waypoint-for\"]"), (e.Line, e.Field));
        Assert.Contains("not one of: service, workload, all, none", e.Message, StringComparison.Ordinal);
        Assert.Empty(r.Resources.Objects);
    }

    [Fact]
    public void GatewayAddressesBecomeTheSynthesizedServiceVip()
    {
        string yaml = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: {name: waypoint, namespace: shop}
            spec:
              gatewayClassName: istio-waypoint
              listeners: [{name: mesh, port: 15008, protocol: HBONE}]
            status:
              addresses:
              - {type: IPAddress, value: 10.96.44.4}
              - {type: Hostname, value: waypoint.shop.svc.cluster.local}
            """;
        TranslationResult r = TranslateOk(yaml);
        Assert.Equal(IPAddress.Parse("10.96.44.4"), Assert.Single(r.Service("shop", "waypoint.shop.svc.cluster.local").Vips).Address);
    }

    [Fact]
    public void TrustDomainOptionShapesTheWaypointIdentity()
    {
        TranslationResult r = TranslateOk(Waypoint(), new KubeTranslatorOptions { TrustDomain = "corp.example" });
        Assert.Equal("spiffe://corp.example/ns/shop/sa/waypoint", r.Object<Waypoint>("shop", "waypoint").Identity);
    }
}
