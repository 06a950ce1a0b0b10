using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using static Ambient.Mesh.Tests.Kubernetes.KubeTestUtil;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>Bad objects are named (Kind ns/name, field, file:line) and left out; the rest of the mesh still translates.</summary>
public sealed class TranslationErrorTests
{
    [Theory]
    [InlineData("Pod", "spec:\n  containers: [{name: a, ports: [{name: http, containerPort: web}]}]", 7, "Pod shop/x: spec.containers[0].ports[0].containerPort", "not an integer")]
    [InlineData("Pod", "spec: {containers: []}\nstatus: {podIP: 10.0.0.300}", 7, "Pod shop/x: status.podIP", "not an IP address")]
    [InlineData("Pod", "spec: {containers: []}\nstatus: {podIPs: [{ip: \"10.0.1\"}]}", 7, "Pod shop/x: status.podIPs[0].ip", "not an IP address")]
    [InlineData("Service", "spec:\n  ports: [{port: 70000}]", 7, "Service shop/x: spec.ports[0].port", "out of range")]
    [InlineData("Service", "spec:\n  ports: [{name: http}]", 7, "Service shop/x: spec.ports[0].port", "required")]
    [InlineData("Service", "spec:\n  clusterIP: 10.96.0.1.5", 7, "Service shop/x: spec.clusterIP", "not an IP address")]
    [InlineData("Service", "spec:\n  selector: {app: [web]}", 7, "Service shop/x: spec.selector[\"app\"]", "expected a string")]
    public void KnownKindWithBadFieldIsAnErrorAndLeftOut(string kind, string body, int line, string field, string message)
    {
        string yaml = $$"""
            apiVersion: v1
            kind: {{kind}}
            metadata:
              name: x
              namespace: shop
            {{body}}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: fine, namespace: shop}
            spec: {clusterIP: 10.96.0.2, ports: [{port: 80}]}
            """;
        TranslationResult r = Translate(yaml);
        ConfigError e = r.SingleError();
        Assert.Equal(("test.yaml", line, field), (e.File, e.Line, e.Field));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.StartsWith($"test.yaml:{line}:", e.ToString(), StringComparison.Ordinal);
        Assert.Single(r.Resources.Services, s => s.Name == "fine");
        Assert.Empty(r.Resources.Workloads);
        Assert.DoesNotContain(r.Resources.Services, s => s.Name == "x");
    }

    [Fact]
    public void ObjectFromTheApiServerIsNamedWithoutFileOrLine()
    {
        ManifestReadResult read = ManifestReader.Parse("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: bogus}\n", "ignored.yaml");
        KubeObject fromApi = read.Objects[0] with { File = null };
        ConfigError e = new KubeTranslator().Translate([fromApi]).SingleError();
        Assert.Equal(("kubernetes", 0, "Service shop/web: spec.clusterIP"), (e.File, e.Line, e.Field));
        Assert.Equal("kubernetes: Service shop/web: spec.clusterIP: 'bogus' is not an IP address", e.ToString());
    }

    [Fact]
    public void UnknownKindsAreIgnoredAndListedOnce()
    {
        const string yaml = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: shop}
            spec: {replicas: 3}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: api, namespace: shop}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings, namespace: shop}
            data: {a: b}
            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: istio-ingress, namespace: shop}
            spec: {selector: {istio: ingressgateway}}
            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: {name: public, namespace: shop}
            spec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}
            """;
        TranslationResult r = TranslateOk(yaml);
        Assert.Equal(0, r.Resources.Count);
        Assert.Empty(r.Warnings);
        Assert.Equal(["ConfigMap", "Deployment.apps", "Gateway.gateway.networking.k8s.io (gatewayClassName istio)", "Gateway.networking.istio.io"], r.IgnoredKinds.ToArray());
    }

    [Fact]
    public void DuplicateObjectsInTheInputAreErrors()
    {
        ManifestReadResult a = ManifestReader.Parse("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: 10.96.0.1}\n", "a.yaml");
        ManifestReadResult b = ManifestReader.Parse("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: 10.96.0.2}\n", "b.yaml");
        TranslationResult r = new KubeTranslator().Translate([.. a.Objects, .. b.Objects]);
        ConfigError e = r.SingleError();
        Assert.Equal("b.yaml", e.File);
        Assert.Contains("defined twice", e.Message, StringComparison.Ordinal);
        Assert.Equal("10.96.0.1", Assert.Single(r.Resources.Services).Vips[0].Address.ToString());
    }
}
