using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Model;
using static Ambient.Mesh.Tests.Kubernetes.KubeTestUtil;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>PeerAuthentication: parsed into records, and the plaintext question answered with Istio's precedence.</summary>
public sealed class PeerAuthenticationTests
{
    private static string Pa(string ns, string name, string spec, string created = "2025-01-01T00:00:00Z") => $$"""
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: {{name}}, namespace: {{ns}}, creationTimestamp: "{{created}}"}
        spec:
        {{spec}}
        ---

        """;

    private static (TranslationResult, PeerAuthenticationSet) Build(string yaml)
    {
        TranslationResult r = TranslateOk(yaml);
        return (r, new PeerAuthenticationSet(r.Resources.Objects.OfType<PeerAuthentication>()));
    }

    [Fact]
    public void NothingConfiguredIsPermissive()
    {
        (TranslationResult r, PeerAuthenticationSet set) = Build(RunningPod("shop", "web-0", "10.0.0.1", "app: web"));
        PlaintextDecision d = set.PlaintextAllowed(r.Pod("shop", "web-0"), 8080);
        Assert.Equal((true, MtlsMode.Permissive, (string?)null), (d.Allowed, d.EffectiveMode, d.PolicyKey));
    }

    [Fact]
    public void NamespaceStrictRefusesPlaintextOnlyThere()
    {
        (TranslationResult r, PeerAuthenticationSet set) = Build(
            Pa("shop", "default", "  mtls: {mode: STRICT}")
            + RunningPod("shop", "web-0", "10.0.0.1", "app: web")
            + RunningPod("other", "web-0", "10.0.0.2", "app: web"));
        PlaintextDecision d = set.PlaintextAllowed(r.Pod("shop", "web-0"), 8080);
        Assert.False(d.Allowed);
        Assert.Equal("STRICT mTLS (PeerAuthentication/shop/default)", d.Describe());
        Assert.True(set.PlaintextAllowed(r.Pod("other", "web-0"), 8080).Allowed);
    }

    [Theory]
    // mesh (istio-system), namespace, workload (selector, with port 9090 PERMISSIVE when set) -> plaintext on 8080 / 9090
    [InlineData("STRICT", null, null, false, false)]
    [InlineData("STRICT", "PERMISSIVE", null, true, true)]
    [InlineData("STRICT", "UNSET", null, false, false)]
    [InlineData("PERMISSIVE", "STRICT", null, false, false)]
    [InlineData("STRICT", "STRICT", "PERMISSIVE", true, true)]
    [InlineData("PERMISSIVE", null, "STRICT", false, true)]
    [InlineData("STRICT", null, "UNSET", false, true)]
    [InlineData(null, null, "DISABLE", true, true)]
    public void PrecedenceIsWorkloadThenNamespaceThenMesh(string? mesh, string? ns, string? workload, bool plain8080, bool plain9090)
    {
        string yaml = RunningPod("shop", "web-0", "10.0.0.1", "app: web");
        if (mesh is not null)
        {
            yaml += Pa("istio-system", "mesh", $"  mtls: {{mode: {mesh}}}");
        }
        if (ns is not null)
        {
            yaml += Pa("shop", "ns", $"  mtls: {{mode: {ns}}}");
        }
        if (workload is not null)
        {
            yaml += Pa("shop", "web", $"  selector: {{matchLabels: {{app: web}}}}\n  mtls: {{mode: {workload}}}\n  portLevelMtls:\n    9090: {{mode: PERMISSIVE}}");
        }
        (TranslationResult r, PeerAuthenticationSet set) = Build(yaml);
        Workload w = r.Pod("shop", "web-0");
        Assert.Equal(plain8080, set.PlaintextAllowed(w, 8080).Allowed);
        Assert.Equal(plain9090, set.PlaintextAllowed(w, 9090).Allowed);
    }

    [Fact]
    public void OldestPolicyWinsWithinALevel()
    {
        (TranslationResult r, PeerAuthenticationSet set) = Build(
            Pa("shop", "newer", "  mtls: {mode: PERMISSIVE}", "2025-06-01T00:00:00Z")
            + Pa("shop", "older", "  mtls: {mode: STRICT}", "2024-06-01T00:00:00Z")
            + RunningPod("shop", "web-0", "10.0.0.1", "app: web"));
        Assert.Equal("PeerAuthentication/shop/older", set.PlaintextAllowed(r.Pod("shop", "web-0"), 80).PolicyKey);
    }

    [Fact]
    public void SelectorPolicyInRootNamespaceDoesNotReachOtherNamespaces()
    {
        (TranslationResult r, PeerAuthenticationSet set) = Build(
            Pa("istio-system", "odd", "  selector: {matchLabels: {app: web}}\n  mtls: {mode: STRICT}")
            + RunningPod("shop", "web-0", "10.0.0.1", "app: web"));
        Assert.True(set.PlaintextAllowed(r.Pod("shop", "web-0"), 80).Allowed);
    }

    [Fact]
    public void RecordKeepsTheFields()
    {
        (TranslationResult r, _) = Build(Pa("shop", "web", "  selector: {matchLabels: {app: web}}\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}"));
        PeerAuthentication p = r.Object<PeerAuthentication>("shop", "web");
        Assert.Equal("web", p.Selector!["app"]);
        Assert.Equal(MtlsMode.Strict, p.Mode);
        Assert.Equal(MtlsMode.Disable, p.PortLevelMtls[8080]);
        Assert.Equal(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero), p.CreationTimestamp);
    }

    [Theory]
    [InlineData("  portLevelMtls:\n    8080: {mode: STRICT}", 6, "spec.portLevelMtls", "requires a workload selector")]
    [InlineData("  mtls: {mode: STRICTER}", 5, "spec.mtls.mode", "not one of: UNSET, DISABLE, PERMISSIVE, STRICT")]
    [InlineData("  mtls: {mod: STRICT}", 5, "spec.mtls.mod", "did you mean 'mode'")]
    [InlineData("  selector: {matchLabels: {app: a}}\n  portLevelMtls:\n    http: {mode: STRICT}", 7, "spec.portLevelMtls[http]", "not an integer")]
    public void BadFieldsAreErrors(string spec, int line, string field, string message)
    {
        TranslationResult r = Translate(Pa("shop", "p", spec));
        ConfigError e = r.SingleError();
        Assert.Equal((line, $"PeerAuthentication shop/p: {field}"), (e.Line, e.Field));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Empty(r.Resources.Objects);
    }
}
