using System.Net;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Sources;
using Ambient.Mesh.Sources.Xds;
using Ambient.Mesh.Tests.ControlPlane;
using Ambient.Mesh.Tests.ControlPlane.Support;
using Ambient.Mesh.Tests.Kubernetes.Api.Support;
using Ambient.Ztunnel;
using Ambient.Ztunnel.Hosting;
using Ambient.Ztunnel.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ambient.Mesh.Tests.Ztunnel;

/// <summary>
/// An agent under an istiod served over https (xDS and CA): the server's certificate must chain to the root file given
/// as --xds-root-cert / CA_ROOT_CA. With the right root it works; with a wrong one every call is refused with an error
/// that says so, the agent keeps running and keeps the state it had.
/// </summary>
public sealed class ControlPlaneTlsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly SpiffeId Echo = new("cluster.local", "shop", "echo");

    private static AgentOptions Options(FakeIstiod istiod, string dir, string root, IPAddress ip) => new()
    {
        StateDir = Directory.CreateDirectory(Path.Combine(dir, "state")).FullName,
        AccessLogWriter = TextWriter.Synchronized(new StringWriter()),
        ControlPlane = new ControlPlaneOptions
        {
            XdsAddress = istiod.Url,
            CaAddress = istiod.Url,
            XdsRootCert = root,
            CaRootCert = root,
            PodName = "ztunnel-tls",
            PodNamespace = "istio-system",
            ServiceAccount = "ztunnel",
            InstanceIp = ip.ToString(),
        },
        ControlPlaneBackoff = new Backoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(200)),
    };

    private static SourceStatus XdsStatus(Agent a) => a.Store.Sources.Single(s => s.Name.StartsWith("xds:", StringComparison.Ordinal));

    [Fact]
    public async Task An_https_istiod_signed_by_the_given_root_works_and_a_root_swapped_for_a_wrong_one_is_refused_while_the_state_stays()
    {
        using var pki = new TestClusterPki();
        using var other = new TestClusterPki();
        string dir = Directory.CreateTempSubdirectory("ambient-cp-tls-").FullName;
        string root = Path.Combine(dir, "root-cert.pem");
        await File.WriteAllTextAsync(root, pki.Ca.ExportCertificatePem());
        await using var istiod = await FakeIstiod.StartAsync(pki.Server);
        Assert.Equal("https", istiod.Url.Scheme);
        IPAddress ip = IPAddress.Parse($"127.66.{Random.Shared.Next(1, 250)}.10");
        istiod.Set(XdsSource.AddressType, "Kubernetes//Pod/shop/echo", XdsSourceTests.Workload("echo", IPAddress.Parse("127.66.0.20")));
        IHost? host = null;
        try
        {
            host = await InProcessAgent.StartAsync(Options(istiod, dir, root, ip), ip);
            Agent a = host.Services.GetRequiredService<AgentService>().Agent;
            await ControlPlaneAgentTests.EventuallyAsync(() => a.Ready, "ready after the first push over https");
            Assert.NotNull(a.State.Current.FindWorkloadByIp(IPAddress.Parse("127.66.0.20")));
            IssuedCertificate issued = await a.Issuer.IssueAsync(Echo, TimeSpan.FromHours(1), CancellationToken.None).AsTask().WaitAsync(Timeout);
            Assert.Equal(istiod.Root.Thumbprint, Assert.Single(a.Issuer.TrustBundle).Thumbprint);
            issued.Leaf.Dispose();

            // The root file now holds an unrelated root (read per handshake): istiod restarts, the reconnect is refused.
            await File.WriteAllTextAsync(root, other.Ca.ExportCertificatePem());
            istiod.DropStreams(closeConnections: true);
            await ControlPlaneAgentTests.EventuallyAsync(() => XdsStatus(a).LastError?.Contains("does not chain to a root in", StringComparison.Ordinal) == true, "the TLS refusal reported");
            Assert.Contains(root, XdsStatus(a).LastError, StringComparison.Ordinal);
            // (The CA's own connection is still the one verified before; a CA refused at its handshake is the next test.)
            // Fails closed, loses nothing: the agent runs, stays ready, and keeps what istiod said before.
            Assert.True(a.Ready);
            Assert.NotNull(a.State.Current.FindWorkloadByIp(IPAddress.Parse("127.66.0.20")));

            // The right root back: the agent reconnects by itself.
            int streams = istiod.StreamCount;
            await File.WriteAllTextAsync(root, pki.Ca.ExportCertificatePem());
            await ControlPlaneAgentTests.EventuallyAsync(() => istiod.StreamCount > streams && XdsStatus(a).LastError is null, "reconnected with the right root");
        }
        finally
        {
            if (host is not null)
            {
                await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));
                host.Dispose();
            }
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task An_https_istiod_whose_certificate_does_not_chain_to_the_root_is_refused_from_the_start_and_the_agent_keeps_running()
    {
        using var pki = new TestClusterPki();
        using var other = new TestClusterPki();
        string dir = Directory.CreateTempSubdirectory("ambient-cp-tls-").FullName;
        string root = Path.Combine(dir, "wrong-root.pem");
        await File.WriteAllTextAsync(root, other.Ca.ExportCertificatePem());
        await using var istiod = await FakeIstiod.StartAsync(pki.Server);
        IPAddress ip = IPAddress.Parse($"127.67.{Random.Shared.Next(1, 250)}.10");
        IHost? host = null;
        try
        {
            host = await InProcessAgent.StartAsync(Options(istiod, dir, root, ip), ip);
            Agent a = host.Services.GetRequiredService<AgentService>().Agent;
            await ControlPlaneAgentTests.EventuallyAsync(() => XdsStatus(a).LastError is not null, "the xDS refusal reported");
            string error = XdsStatus(a).LastError!;
            Assert.True(error.Contains($"the control plane's certificate does not chain to a root in '{root}'", StringComparison.Ordinal), error);
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => a.Issuer.IssueAsync(Echo, TimeSpan.FromHours(1), CancellationToken.None).AsTask().WaitAsync(Timeout));
            Assert.Contains($"does not chain to a root in '{root}'", refused.Message, StringComparison.Ordinal);
            Assert.Empty(istiod.CertificateRequests);
            // Not ready (nothing learned), but running: the admin port answers and names the problem.
            Assert.False(a.Ready);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            string dump = await http.GetStringAsync(new Uri($"http://{a.EndPoints["admin"]}/config_dump"));
            Assert.Contains("does not chain to a root", dump, StringComparison.Ordinal);
        }
        finally
        {
            if (host is not null)
            {
                await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));
                host.Dispose();
            }
            Directory.Delete(dir, recursive: true);
        }
    }
}
