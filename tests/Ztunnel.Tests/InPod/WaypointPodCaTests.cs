using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Protos.Istio.Ca;
using Ambient.Ztunnel.InPod;
using Ambient.Ztunnel.Tests.InPod.Support;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// Waypoints on demand under the built-in CA (issue 12): the agent serves Istio's CA API on the loopback of each
/// waypoint pod's own network namespace, and signs only that pod's identity. The calls here are made from inside the
/// pods' namespaces, as the waypoint process makes them; the agent learns the pods from manifests and the CNI plugin.
/// </summary>
public sealed class WaypointPodCaTests(ITestOutputHelper output)
{
    private const string Manifests = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: waypoint, namespace: shop}
        spec:
          gatewayClassName: istio-waypoint
          listeners: [{name: mesh, port: 15008, protocol: HBONE}]
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: ingress, namespace: shop}
        spec:
          gatewayClassName: istio
          listeners: [{name: http, port: 80, protocol: HTTP}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: wp, namespace: shop, uid: uid-wp, labels: {gateway.networking.k8s.io/gateway-name: waypoint, istio.io/dataplane-mode: none}}
        spec: {nodeName: node-a, serviceAccountName: waypoint, containers: [{name: c, image: c}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: gw, namespace: shop, uid: uid-gw, labels: {gateway.networking.k8s.io/gateway-name: ingress}}
        spec: {nodeName: node-a, serviceAccountName: ingress, containers: [{name: c, image: c}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: app, namespace: shop, uid: uid-app, labels: {app: app}}
        spec: {nodeName: node-a, serviceAccountName: app, containers: [{name: c, image: c}]}
        """;

    private const string WaypointId = "spiffe://cluster.local/ns/shop/sa/waypoint";

    [RootFact]
    public async Task WaypointPod_GetsItsOwnIdentityOnly_FromItsLoopback_AcrossRestartAndUpgrade_UntilRemoved()
    {
        var wp = new PodSpec("node-a", "wp", "shop", "10.10.1.20", InConfig: false);
        var gw = new PodSpec("node-a", "gw", "shop", "10.10.1.21", InConfig: false);
        var app = new PodSpec("node-a", "app", "shop", "10.10.1.22", InConfig: false);
        await using var cluster = await InPodCluster.StartAsync(new ClusterSpec { Nodes = ["node-a"], Pods = [wp, gw, app], Manifests = Manifests }, output.WriteLine);
        try
        {
            var root = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(cluster.Root, "ca-cert.pem"));
            await InPodCluster.EventuallyAsync(async () => (await cluster.ListeningPortsAsync(wp.Name)).Contains(InPodManager.PodCaPort), "the waypoint pod's CA endpoint");

            // Not captured (dataplane-mode none) but served: nothing else of the agent listens in the waypoint's pod.
            Assert.DoesNotContain(15008, await cluster.ListeningPortsAsync(wp.Name));
            // A pod of a Gateway of another class, and a plain pod: no endpoint.
            Assert.DoesNotContain(InPodManager.PodCaPort, await cluster.ListeningPortsAsync(gw.Name));
            Assert.DoesNotContain(InPodManager.PodCaPort, await cluster.ListeningPortsAsync(app.Name));
            var fromApp = await Assert.ThrowsAsync<RpcException>(() => CreateCertificateAsync(cluster, app, "spiffe://cluster.local/ns/shop/sa/app"));
            Assert.Equal(StatusCode.Unavailable, fromApp.StatusCode);

            // Its own identity: a chain from the leaf for our key to the mesh root, root last.
            await AssertSignedAsync(cluster, wp, root);
            Assert.Contains(cluster.Agent("node-a").Stderr, l => l.Contains($"signed {WaypointId} for waypoint pod shop/wp", StringComparison.Ordinal));

            // Anything else is refused, with why, a log line and a counter.
            var other = await Assert.ThrowsAsync<RpcException>(() => CreateCertificateAsync(cluster, wp, "spiffe://cluster.local/ns/shop/sa/app"));
            Assert.Equal(StatusCode.PermissionDenied, other.StatusCode);
            Assert.Contains($"this pod may only hold {WaypointId}", other.Status.Detail, StringComparison.Ordinal);
            var extraName = await Assert.ThrowsAsync<RpcException>(() => CreateCertificateAsync(cluster, wp, WaypointId, dnsName: "reviews.shop.svc.cluster.local"));
            Assert.Equal(StatusCode.PermissionDenied, extraName.StatusCode);
            var impersonating = await Assert.ThrowsAsync<RpcException>(() => CreateCertificateAsync(cluster, wp, WaypointId, impersonate: "spiffe://cluster.local/ns/shop/sa/app"));
            Assert.Equal(StatusCode.PermissionDenied, impersonating.StatusCode);
            Assert.Contains(cluster.Agent("node-a").Stderr, l => l.Contains("refused a certificate for waypoint pod shop/wp", StringComparison.Ordinal));
            Assert.Equal(3, await cluster.MetricAsync("node-a", "ambient_pod_ca_requests_total", ("result", "denied")));
            Assert.Equal(1, await cluster.MetricAsync("node-a", "ambient_pod_ca_requests_total", ("result", "signed")));

            // The waypoint itself, configured as `waypoint generate` configures it (CA_ADDRESS, no token, no root), in
            // its pod: it gets its certificate there and becomes ready.
            await using (var waypoint = StartWaypoint(cluster, wp))
            {
                await WaitReadyAsync(cluster, wp, waypoint);
                Assert.Contains(InPodManager.PodCaPort, await cluster.ListeningPortsAsync(wp.Name));
                Assert.Contains(15008, await cluster.ListeningPortsAsync(wp.Name));
            }
            Assert.Equal(2, await cluster.MetricAsync("node-a", "ambient_pod_ca_requests_total", ("result", "signed")));

            // A crashed agent's successor re-opens the endpoint from its state directory (the CNI plugin does not re-announce pods).
            var first = cluster.Agent("node-a");
            first.Signal(Daemon.SigKill);
            Assert.True(await first.WaitForExitAsync(TimeSpan.FromSeconds(15)), "the agent survived SIGKILL");
            Assert.DoesNotContain(InPodManager.PodCaPort, await cluster.ListeningPortsAsync(wp.Name));
            var restarted = await cluster.StartAgentAsync("node-a");
            await InPodCluster.EventuallyAsync(async () => (await cluster.ListeningPortsAsync(wp.Name)).Contains(InPodManager.PodCaPort), "the CA endpoint after a restart");
            await AssertSignedAsync(cluster, wp, root);

            // An upgrade hands the listening socket over with the pods' (the socket never closes), and the new agent signs.
            var successor = await cluster.StartSuccessorAgentAsync("node-a");
            Assert.True(await restarted.WaitForExitAsync(TimeSpan.FromSeconds(60)), "the older agent did not exit after handing over");
            Assert.Contains(successor.Stderr, l => l.Contains("waypoint pod shop/wp: serving its certificates", StringComparison.Ordinal));
            await AssertSignedAsync(cluster, wp, root);
            Assert.Contains(successor.Stderr, l => l.Contains($"signed {WaypointId} for waypoint pod shop/wp", StringComparison.Ordinal));

            // The pod goes (CNI DEL): the endpoint goes with it.
            var del = await cluster.CniChainAsync("DEL", wp);
            Assert.True(del.Ok, del.ToString());
            await InPodCluster.EventuallyAsync(async () => !(await cluster.ListeningPortsAsync(wp.Name)).Contains(InPodManager.PodCaPort), "the CA endpoint closed after DEL");
            Assert.Contains(successor.Stderr, l => l.Contains("waypoint pod shop/wp: CA endpoint closed (pod removed)", StringComparison.Ordinal));
            Assert.DoesNotContain("shop", await File.ReadAllTextAsync(Path.Combine(cluster.StateDir("node-a"), "waypoints.json")), StringComparison.Ordinal);
        }
        catch
        {
            output.WriteLine(cluster.Describe());
            throw;
        }
    }

    private static Daemon StartWaypoint(InPodCluster cluster, PodSpec pod)
    {
        string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        string dll = Path.Combine(Binaries.RepoRoot, "waypoint", "bin", configuration, "net10.0", "waypoint.dll");
        Assert.True(File.Exists(dll), $"the waypoint is not built at {dll} (the test project builds it)");
        return Daemon.Start($"waypoint in {pod.Name}", "nsenter", [
            $"--net={cluster.PodNetns(pod.Name)}", "env", $"CA_ADDRESS={GenerateCaAddress}", "dotnet", dll,
            "--gateway", $"{pod.Namespace}/waypoint", "--manifests", Path.Combine(cluster.Root, "manifests"),
            "--state-dir", Path.Combine(cluster.Root, "waypoint-state"),
        ]);
    }

    /// <summary>What `waypoint generate` writes into the Deployment by default (waypoint/Cli/GenerateCommand.cs).</summary>
    private const string GenerateCaAddress = "http://127.0.0.1:15012";

    /// <summary>Polls the waypoint's readiness in its pod (bounded): ready means it holds a certificate from the agent.</summary>
    private static async Task WaitReadyAsync(InPodCluster cluster, PodSpec pod, Daemon waypoint)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        CommandResult? last = null;
        while (DateTime.UtcNow < deadline && !waypoint.HasExited)
        {
            last = await cluster.InPodAsync(pod.Name, "curl", "-sf", "--max-time", "5", "-o", "/dev/null", "http://127.0.0.1:15021/healthz/ready");
            if (last.Ok)
            {
                return;
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"the waypoint in {pod.Name} did not become ready: {last}\n{waypoint.Describe()}");
    }

    private static async Task AssertSignedAsync(InPodCluster cluster, PodSpec pod, X509Certificate2 root)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var response = await CreateCertificateAsync(cluster, pod, WaypointId, key: key);
        var chain = response.CertChain.Select(pem => X509Certificate2.CreateFromPem(pem)).ToList();
        Assert.True(chain.Count >= 2, $"a chain needs the leaf and the root, got {chain.Count}");
        Assert.Equal(root.Thumbprint, chain[^1].Thumbprint);
        var leaf = chain[0];
        Assert.True(SpiffeSan.TryRead(leaf, out var id, out var error), error);
        Assert.Equal(WaypointId, id.ToString());
        using (var leafKey = leaf.GetECDsaPublicKey()!)
        {
            Assert.Equal(key.ExportSubjectPublicKeyInfo(), leafKey.ExportSubjectPublicKeyInfo());
        }
        using var verify = new X509Chain();
        verify.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        verify.ChainPolicy.CustomTrustStore.Add(root);
        verify.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.True(verify.Build(leaf), string.Join(", ", verify.ChainStatus.Select(s => s.StatusInformation)));
    }

    /// <summary>A CreateCertificate call made from inside <paramref name="pod"/>'s network namespace to 127.0.0.1:15012 there, as a waypoint makes it.</summary>
    private static async Task<IstioCertificateResponse> CreateCertificateAsync(
        InPodCluster cluster, PodSpec pod, string uri, string? dnsName = null, string? impersonate = null, ECDsa? key = null)
    {
        using var netns = Netns.Open(cluster.PodNetns(pod.Name));
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = netns.CreateSocket(AddressFamily.InterNetwork);
                try
                {
                    await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, InPodManager.PodCaPort), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{InPodManager.PodCaPort}", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        var client = new IstioCertificateService.IstioCertificateServiceClient(channel);
        using var own = key is null ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : null;
        var csr = new CertificateRequest(new X500DistinguishedNameBuilder().Build(), key ?? own!, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(uri));
        if (dnsName is not null)
        {
            san.AddDnsName(dnsName);
        }
        csr.CertificateExtensions.Add(san.Build(critical: true));
        var request = new IstioCertificateRequest { Csr = csr.CreateSigningRequestPem(), ValidityDuration = 3600 };
        if (impersonate is not null)
        {
            request.Metadata = new Google.Protobuf.WellKnownTypes.Struct { Fields = { ["ImpersonatedIdentity"] = Google.Protobuf.WellKnownTypes.Value.ForString(impersonate) } };
        }
        return await client.CreateCertificateAsync(request, deadline: DateTime.UtcNow.AddSeconds(20));
    }
}
