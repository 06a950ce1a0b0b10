using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.L7;
using Ambient.Mesh.Model.L7;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

public sealed class L7KindsTests
{
    [Theory]
    [InlineData("gateway.networking.k8s.io", "HTTPRoute", true)]
    [InlineData("gateway.networking.k8s.io", "GRPCRoute", true)]
    [InlineData("networking.istio.io", "VirtualService", true)]
    [InlineData("networking.istio.io", "DestinationRule", true)]
    [InlineData("telemetry.istio.io", "Telemetry", true)]
    [InlineData("policy.linkerd.io", "HTTPLocalRateLimitPolicy", true)]
    [InlineData("gateway.networking.k8s.io", "Gateway", false)]
    [InlineData("security.istio.io", "AuthorizationPolicy", false)]
    [InlineData("", "Service", false)]
    [InlineData("policy.linkerd.io", "HTTPRoute", false)] // Linkerd's own HTTPRoute is another kind
    public void HandlesTheL7KindsByGroup(string group, string kind, bool handled) =>
        Assert.Equal(handled, L7Kinds.Handles(group, kind));

    [Fact]
    public void AnObjectFromTheApiServerParsesLikeTheManifest()
    {
        // The API source hands over JSON as the same node tree: strings quoted, numbers and booleans plain.
        L7Manifest.Result r = L7Manifest.Parse("""
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "42"},
             "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
                      "rules": [{"backendRefs": [{"name": "reviews-v2", "port": 9080, "weight": 90}],
                                 "retry": {"attempts": 3, "codes": [503]}}]},
             "status": {"parents": []}}
            """);
        Assert.Empty(r.Errors);
        var route = Assert.IsType<HttpRoute>(r.Object);
        Assert.Equal(90, route.Rules[0].BackendRefs[0].Weight);
        Assert.Equal(3, route.Rules[0].Retry!.Attempts);
        Assert.Equal(9080, route.ParentRefs[0].Port);
    }

    [Fact]
    public void AKindThatIsNotL7IsRefusedNotThrown()
    {
        var body = new YamlMappingNode { { "apiVersion", "v1" }, { "kind", "ConfigMap" } };
        var obj = new KubeObject("v1", "ConfigMap", "default", "cm", body, "cm.yaml");
        var reader = new YamlConfigReader("cm.yaml");
        Assert.Null(L7Kinds.Parse(obj, reader));
        Assert.Contains(reader.Errors, e => e.Message.Contains("is not an L7 kind", StringComparison.Ordinal));
    }

    [Fact]
    public void ErrorsOfOneObjectDoNotFailTheNextOnTheSameReader()
    {
        // A source parses a whole file with one reader: a bad object must not make a good one after it fail.
        var reader = new YamlConfigReader(L7Manifest.File);
        Assert.Null(L7Kinds.Parse(Object("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: bad}
            spec: {host: a, trafficPolicy: {connectionPool: {tcp: {maxConnections: -1}}}}
            """), reader));
        Assert.True(reader.HasErrors);
        Assert.IsType<DestinationRule>(L7Kinds.Parse(Object("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: good}
            spec: {host: a}
            """), reader));
    }

    private static KubeObject Object(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var body = (YamlMappingNode)stream.Documents[0].RootNode;
        string apiVersion = ((YamlScalarNode)body["apiVersion"]).Value!;
        string kind = ((YamlScalarNode)body["kind"]).Value!;
        string name = ((YamlScalarNode)((YamlMappingNode)body["metadata"])["name"]).Value!;
        return new KubeObject(apiVersion, kind, "default", name, body, L7Manifest.File);
    }
}
