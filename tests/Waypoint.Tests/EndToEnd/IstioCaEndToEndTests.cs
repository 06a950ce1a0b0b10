using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Tests.ControlPlane.Support;
using Ambient.Waypoint.Cli;
using Ambient.Waypoint.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// The waypoint in a cluster with Istio's CA (an in-process istiod on loopback): its certificate for
/// spiffe://cluster.local/ns/shop/sa/waypoint comes from the CA, as do the agents', and a request crosses
/// client -> ztunnel -> waypoint -> ztunnel -> server with no built-in CA anywhere.
/// </summary>
public sealed class IstioCaEndToEndTests
{
    private const string WaypointId = "spiffe://cluster.local/ns/shop/sa/waypoint";

    [Fact]
    public async Task WaypointWaitsForItsCertificateFromIstiosCaThenServesARequestEndToEnd()
    {
        await using var istiod = await FakeIstiod.StartAsync();
        istiod.CaAvailable = false;
        await using var mesh = await WaypointMesh.StartAsync(istioCa: istiod.Url);
        var readiness = mesh.WaypointEndpoints.Readiness;

        // The CA is down: the waypoint runs, keeps asking, and is not ready; /config_dump says why.
        await TestWait.UntilAsync(() => istiod.CertificateRequests.Count >= 2, "the waypoint retries its first certificate");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await ReadyStatusAsync(readiness));
        string dump = await mesh.GetAdminAsync(mesh.WaypointEndpoints.Admin, "/config_dump");
        Assert.Contains($"no certificate for {WaypointId} yet", dump, StringComparison.Ordinal);

        // A CA that signs another identity is refused as well: still not ready.
        istiod.ForceSan = "spiffe://cluster.local/ns/shop/sa/intruder";
        istiod.CaAvailable = true;
        int before = istiod.CertificateRequests.Count;
        await TestWait.UntilAsync(() => istiod.CertificateRequests.Count >= before + 2, "the waypoint retries after a wrong leaf");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await ReadyStatusAsync(readiness));
        Assert.Empty(mesh.Waypoint.Services.GetRequiredService<CertificateManager>().Snapshot());

        istiod.ForceSan = null;
        await TestWait.UntilAsync(async () => await ReadyStatusAsync(readiness) == HttpStatusCode.OK, "ready once the CA signs", 20_000);

        var r = await mesh.CurlAsync("/through-istio-ca");
        Assert.True(r.Status == 200, $"{r.Status} {r.Stderr}\n{r.Body}\n{mesh.WaypointLog}");
        Assert.Equal("/through-istio-ca", r.Echo("path"));
        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"GET /through-istio-ca HTTP/1.1\" 200");
        // The destination ztunnel authenticated the waypoint by the certificate the CA signed.
        string inbound = mesh.AgentB.Metrics.Render() + mesh.AgentC.Metrics.Render();
        Assert.Contains($"source_principal=\"{WaypointId}\"", inbound, StringComparison.Ordinal);

        // The waypoint asked for its own identity (no impersonation) with its own token; its certificate chains to
        // the CA's root, not to a built-in CA.
        var mine = istiod.CertificateRequests.Where(c => SanOf(c.Csr).EndsWith(WaypointId, StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(mine);
        Assert.All(mine, c => Assert.Null(c.Metadata));
        Assert.Contains(istiod.Calls, c => c.Authorization == "Bearer token-of-waypoint");
        var held = mesh.Waypoint.Services.GetRequiredService<CertificateManager>().Snapshot();
        var cert = Assert.Single(held);
        Assert.Equal(WaypointId, cert.Id.ToString());
        Assert.Equal(istiod.Root.Subject, cert.Leaf.Issuer);
        Assert.False(File.Exists(Path.Combine(mesh.Dir, "state-waypoint", "ca-key.pem")), "the waypoint made a CA of its own");
    }

    [Fact]
    public void CaFlagsOverIstiosVariables()
    {
        var env = new Dictionary<string, string>
        {
            ["CA_ADDRESS"] = "istiod.istio-system.svc:15012",
            ["ISTIO_META_CLUSTER_ID"] = "east",
            ["TRUST_DOMAIN"] = "example.org",
        };
        var fromEnv = CommandLine.Parse(["--gateway", "shop/waypoint"]).ControlPlane(env)!;
        Assert.Equal(new Uri("https://istiod.istio-system.svc:15012"), fromEnv.CaAddress);
        Assert.Equal(("east", "/var/run/secrets/tokens/istio-token", "example.org"), (fromEnv.ClusterId, fromEnv.TokenFile, fromEnv.TrustDomain));

        // XDS_ADDRESS names the CA when CA_ADDRESS is absent (as in Istio), but the waypoint takes no xDS from it.
        var viaXds = CommandLine.Parse(["--gateway", "shop/waypoint"]).ControlPlane(new Dictionary<string, string> { ["XDS_ADDRESS"] = "istiod:15012" })!;
        Assert.Equal(new Uri("https://istiod:15012"), viaXds.CaAddress);
        Assert.Null(viaXds.XdsAddress);

        var cl = CommandLine.Parse(["--gateway", "shop/waypoint", "--ca-address", "http://127.0.0.1:15010", "--token-file", "/tmp/t",
            "--cluster-id", "west", "--ca-root-cert", "/tmp/root.pem"]);
        Assert.Null(cl.Error);
        var cp = cl.ControlPlane(env)!;
        Assert.Equal(new Uri("http://127.0.0.1:15010"), cp.CaAddress);
        Assert.Equal(("/tmp/t", "west", "/tmp/root.pem"), (cp.TokenFile, cp.ClusterId, cp.CaRootCert));

        // The node agent's endpoint in the pod (waypoint generate's default) takes no token unless one is named.
        var nodeLocal = CommandLine.Parse(["--gateway", "shop/waypoint"]).ControlPlane(new Dictionary<string, string> { ["CA_ADDRESS"] = "http://127.0.0.1:15012" })!;
        Assert.Equal((new Uri("http://127.0.0.1:15012"), (string?)null), (nodeLocal.CaAddress, nodeLocal.TokenFile));
        var nodeLocalWithToken = CommandLine.Parse(["--gateway", "shop/waypoint"]).ControlPlane(
            new Dictionary<string, string> { ["CA_ADDRESS"] = "http://127.0.0.1:15012", ["AUTH_TOKEN"] = "/tmp/t" })!;
        Assert.Equal("/tmp/t", nodeLocalWithToken.TokenFile);

        Assert.Null(CommandLine.Parse(["--gateway", "shop/waypoint"]).ControlPlane(new Dictionary<string, string>()));
        Assert.NotNull(CommandLine.Parse(["--gateway", "shop/waypoint", "--ca-address"]).Error);
        var bad = Assert.Throws<FormatException>(() => CommandLine.Parse(["--gateway", "shop/waypoint", "--ca-address", "ftp://x"]).ControlPlane(env));
        Assert.Contains("--ca-address", bad.Message, StringComparison.Ordinal);
    }

    private static async Task<HttpStatusCode> ReadyStatusAsync(IPEndPoint readiness)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var response = await http.GetAsync($"http://{readiness}/healthz/ready");
        return response.StatusCode;
    }

    private static string SanOf(string csrPem)
    {
        var csr = CertificateRequest.LoadSigningRequestPem(csrPem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        // One URI SAN: its IA5String bytes end the extension, so the id reads as the ASCII tail.
        var san = csr.CertificateExtensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        return System.Text.Encoding.ASCII.GetString(san.RawData);
    }
}
