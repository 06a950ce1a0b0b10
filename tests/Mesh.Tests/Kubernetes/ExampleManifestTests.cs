using System.Net;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Model;
using Ambient.Mesh.Policy;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>mesh/Kubernetes/examples/ (the demo's mesh as Kubernetes manifests) loads cleanly and means what it says.</summary>
public sealed class ExampleManifestTests
{
    private static string ExamplesDir()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "mesh", "Kubernetes", "examples");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("mesh/Kubernetes/examples not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void ExampleManifestsLoadAndTranslateWithoutErrorsOrWarnings()
    {
        ManifestReadResult read = ManifestReader.Read([ExamplesDir()]);
        Assert.True(read.Ok, string.Join("\n", read.Errors));
        Assert.Empty(read.Warnings);
        Assert.Equal(5, read.Files.Length);

        TranslationResult r = new KubeTranslator().Translate(read.Objects);
        Assert.Empty(r.Errors);
        Assert.Empty(r.Warnings);
        Assert.Empty(r.IgnoredKinds);

        Workload web = Assert.Single(r.Resources.Workloads, w => w.Name.StartsWith("web-", StringComparison.Ordinal));
        Assert.Equal(("web", "deployment", "web", InboundProtocol.Hbone), (web.WorkloadName, web.WorkloadType, web.ServiceAccount, web.Protocol));
        Assert.Equal(IPAddress.Parse("10.10.2.10"), Assert.Single(web.WorkloadIps));
        Assert.Equal(8080, web.Services["shop/web.shop.svc.cluster.local"][80]);

        Workload payments = Assert.Single(r.Resources.Workloads, w => w.WorkloadName == "payments");
        Assert.Equal(9090, payments.Services["shop/payments.shop.svc.cluster.local"][80]);
        Assert.Equal(["shop/payments-allow-frontend"], payments.AuthorizationPolicies.ToArray());

        Workload frontend = Assert.Single(r.Resources.Workloads, w => w.Name == "frontend");
        Assert.Equal(("node-a", InboundProtocol.Hbone), (frontend.Node, frontend.Protocol));
        Assert.Equal(InboundProtocol.Tcp, Assert.Single(r.Resources.Workloads, w => w.Namespace == "legacy").Protocol);

        Assert.Equal(["shop/payments.shop.svc.cluster.local", "shop/waypoint.shop.svc.cluster.local", "shop/web.shop.svc.cluster.local"],
            r.Resources.Services.Select(s => s.Key).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(IPAddress.Parse("10.96.0.11"), Assert.Single(r.Resources.Services, s => s.Name == "payments").Vips.Single().Address);

        AuthorizationPolicy policy = Assert.Single(r.Resources.Policies);
        Assert.Equal(PolicyScope.WorkloadSelector, policy.Scope);
        var fromFrontend = new ConnectionInfo(IPAddress.Parse("10.10.1.10"), IPAddress.Parse("10.10.2.11"), 9090, "cluster.local/ns/shop/sa/frontend", null, null);
        var fromBatch = fromFrontend with { SourceIp = IPAddress.Parse("10.10.1.11"), SourcePrincipal = "cluster.local/ns/shop/sa/batch" };
        Assert.True(Authorizer.Matches(policy, fromFrontend));
        Assert.False(Authorizer.Matches(policy, fromBatch));

        Waypoint waypoint = Assert.Single(r.Resources.Objects.OfType<Waypoint>());
        Assert.Equal("spiffe://cluster.local/ns/shop/sa/waypoint", waypoint.Identity);
        Assert.All(r.Resources.Workloads, w => Assert.Null(w.Waypoint));
    }
}
