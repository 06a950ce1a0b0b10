using System.Net;
using Ambient.Ztunnel.Tests.Support;
using Ambient.Mesh.Config;
using Ambient.Waypoint.Hosting;
using Ambient.Ztunnel;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Tests.Support;

/// <summary>
/// The waypoint data path on loopback, every address in 127.0.0.0/8: a client pod on node-a, two echo pods (v1, v2)
/// on node-b and node-c behind the Service <c>echo</c> (labelled <c>istio.io/use-waypoint: waypoint</c>), and the waypoint pod
/// serving Gateway shop/waypoint on its own address's port 15008. Both ztunnels and the waypoint run in-process as
/// their programs compose them, and know the mesh only from the same manifest directory; a test adds its routes and
/// policies as more manifests. Traffic: curl -> node-a ztunnel (SOCKS5) -> HBONE -> waypoint -> HBONE -> node-b
/// ztunnel -> echo pod.
/// </summary>
internal sealed class WaypointMesh : IAsyncDisposable
{
    private static int s_next;
    private static readonly int s_octet = 200 + Random.Shared.Next(50);
    private readonly List<IAsyncDisposable> _owned = [];

    private WaypointMesh(int n)
    {
        Client = IPAddress.Parse($"127.{s_octet}.{n}.10");
        EchoV1 = IPAddress.Parse($"127.{s_octet}.{n}.20");
        EchoV2 = IPAddress.Parse($"127.{s_octet}.{n}.21");
        WaypointIp = IPAddress.Parse($"127.{s_octet}.{n}.30");
        Vip = IPAddress.Parse($"127.{s_octet}.{n}.1");
        WaypointVip = IPAddress.Parse($"127.{s_octet}.{n}.2");
        OtherVip = IPAddress.Parse($"127.{s_octet}.{n}.3");
        EchoV2Vip = IPAddress.Parse($"127.{s_octet}.{n}.4");
        GrpcVip = IPAddress.Parse($"127.{s_octet}.{n}.5");
        Dir = Directory.CreateTempSubdirectory("ambient-waypoint-").FullName;
        ManifestDir = Path.Combine(Dir, "mesh");
        Directory.CreateDirectory(ManifestDir);
    }

    public IPAddress Client { get; }
    public IPAddress EchoV1 { get; }
    public IPAddress EchoV2 { get; }
    public IPAddress WaypointIp { get; }
    public IPAddress Vip { get; }
    public IPAddress WaypointVip { get; }
    /// <summary>A service that does not use the waypoint (<c>plain</c>, backed by echo v1).</summary>
    public IPAddress OtherVip { get; }
    /// <summary>Service <c>echo-v2</c> (echo v2 only; no waypoint).</summary>
    public IPAddress EchoV2Vip { get; }
    /// <summary>Service <c>grpc</c> (port 50051 to the echo pods' <c>grpc</c> port; uses the waypoint), when started with gRPC ports.</summary>
    public IPAddress GrpcVip { get; }
    /// <summary>The echo pods' gRPC servers (their container port <c>grpc</c>), or null: no gRPC port in the manifests.</summary>
    public GrpcPorts? Grpc { get; private set; }
    public string Dir { get; }
    public string ManifestDir { get; }
    public EchoApp V1 { get; private set; } = null!;
    public EchoApp V2 { get; private set; } = null!;
    public IHost NodeA { get; private set; } = null!;
    public IHost NodeB { get; private set; } = null!;
    /// <summary>echo-v2's node: in shared mode a ztunnel serves HBONE on one address, so each echo pod has its own node.</summary>
    public IHost NodeC { get; private set; } = null!;
    public WebApplication Waypoint { get; private set; } = null!;
    public StringWriter WaypointLog { get; } = new();
    public StringWriter AccessLogA { get; } = new();
    public StringWriter AccessLogB { get; } = new();
    public StringWriter AccessLogC { get; } = new();

    public Agent AgentA => NodeA.Services.GetRequiredService<AgentService>().Agent;
    public Agent AgentB => NodeB.Services.GetRequiredService<AgentService>().Agent;
    public Agent AgentC => NodeC.Services.GetRequiredService<AgentService>().Agent;
    public WaypointEndpoints WaypointEndpoints => Waypoint.Services.GetRequiredService<WaypointEndpoints>();

    /// <param name="extra">More manifests (routes, policies), written before anything starts.</param>
    /// <param name="grpc">Ports of gRPC servers on the echo pods' addresses (a test starts them first, see
    /// <see cref="NextSlot"/>): the pods get a container port <c>grpc</c>, and the services port 50051.</param>
    /// <param name="istioCa">Istio's CA: every certificate (both agents', the waypoint's) comes from it instead of the built-in CA.</param>
    /// <param name="tracing">The waypoint's OTLP export and sampling; null: no tracing (the program's default without OTEL_* variables).</param>
    /// <param name="logging">The waypoint's log providers (default: none).</param>
    public static async Task<WaypointMesh> StartAsync(string extra = "", AccessLogFormat accessLog = AccessLogFormat.Text, GrpcPorts? grpc = null, int? slot = null, Uri? istioCa = null, Telemetry.Tracing.TracingOptions? tracing = null, Action<ILoggingBuilder>? logging = null)
    {
        var mesh = new WaypointMesh(slot ?? NextSlot()) { _istioCa = istioCa };
        mesh.Grpc = grpc;
        try
        {
            mesh.V1 = await EchoApp.StartAsync("echo-v1", mesh.EchoV1);
            mesh._owned.Add(mesh.V1);
            mesh.V2 = await EchoApp.StartAsync("echo-v2", mesh.EchoV2);
            mesh._owned.Add(mesh.V2);
            await File.WriteAllTextAsync(Path.Combine(mesh.ManifestDir, "shop.yaml"), mesh.BaseManifests());
            if (extra.Length > 0)
            {
                await File.WriteAllTextAsync(Path.Combine(mesh.ManifestDir, "extra.yaml"), extra);
            }
            mesh.NodeA = await mesh.StartAgentAsync("node-a", mesh.Client, mesh.AccessLogA);
            mesh.NodeB = await mesh.StartAgentAsync("node-b", mesh.EchoV1, mesh.AccessLogB);
            mesh.NodeC = await mesh.StartAgentAsync("node-c", mesh.EchoV2, mesh.AccessLogC);
            mesh.Waypoint = WaypointHost.Build(
                new WaypointOptions
                {
                    GatewayNamespace = "shop",
                    GatewayName = "waypoint",
                    StateDir = mesh.StateDirFor("waypoint"),
                    ControlPlane = mesh.ControlPlaneFor("waypoint", "waypoint", mesh.WaypointIp),
                    CaRetry = new Mesh.ControlPlane.Backoff(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(200)),
                    Manifests = [mesh.ManifestDir],
                    AccessLog = accessLog,
                    AccessLogWriter = TextWriter.Synchronized(mesh.WaypointLog),
                    Tracing = tracing,
                },
                new MeshConfig
                {
                    Listeners = new ListenerConfig
                    {
                        Hbone = new IPEndPoint(mesh.WaypointIp, 15008),
                        Admin = new IPEndPoint(mesh.WaypointIp, 0),
                        Metrics = new IPEndPoint(mesh.WaypointIp, 0),
                        Readiness = new IPEndPoint(mesh.WaypointIp, 0),
                    },
                    DrainTimeout = TimeSpan.FromSeconds(2),
                },
                logging: logging ?? (_ => { }));
            await mesh.Waypoint.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            return mesh;
        }
        catch
        {
            await mesh.DisposeAsync();
            throw;
        }
    }

    /// <summary>The address block of the next mesh, for a test that must know the pod addresses before it starts.</summary>
    public static int NextSlot() => Interlocked.Increment(ref s_next) % 250 + 1;

    /// <summary>The echo pods' addresses in the mesh of <paramref name="slot"/>.</summary>
    public static (IPAddress V1, IPAddress V2) EchoAddresses(int slot) => (AddressIn(slot, 20), AddressIn(slot, 21));

    /// <summary>An address of the mesh of <paramref name="slot"/> (1-9 are service VIPs; 1-5 are taken by the base manifests).</summary>
    public static IPAddress AddressIn(int slot, int host) => IPAddress.Parse($"127.{s_octet}.{slot}.{host}");

    /// <summary>Replaces the extra manifests and waits until the waypoint has loaded the change.</summary>
    public async Task ApplyAsync(string extra)
    {
        var store = Waypoint.Services.GetRequiredService<Mesh.Sources.MeshStore>();
        long before = store.Current.Version;
        await File.WriteAllTextAsync(Path.Combine(ManifestDir, "extra.yaml"), extra);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (store.Current.Version == before)
        {
            Assert.True(DateTime.UtcNow < deadline, "the waypoint did not load the changed manifests within 20 s");
            await Task.Delay(50);
        }
    }

    private string BaseManifests() => $$"""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          labels:
            istio.io/dataplane-mode: ambient
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata:
          name: waypoint
          namespace: shop
        spec:
          gatewayClassName: istio-waypoint
          listeners:
          - {name: mesh, port: 15008, protocol: HBONE}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: waypoint
          namespace: shop
        spec:
          clusterIP: {{WaypointVip}}
          selector: {gateway.networking.k8s.io/gateway-name: waypoint}
          ports: [{name: mesh, port: 15008}]
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: waypoint-0
          namespace: shop
          labels: {gateway.networking.k8s.io/gateway-name: waypoint}
        spec:
          nodeName: node-w
          serviceAccountName: waypoint
          containers: [{name: waypoint, image: waypoint}]
        status:
          podIP: {{WaypointIp}}
          podIPs: [{ip: {{WaypointIp}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: client
          namespace: shop
          labels: {app: client}
        spec:
          nodeName: node-a
          serviceAccountName: client
          containers: [{name: curl, image: curl}]
        status:
          podIP: {{Client}}
          podIPs: [{ip: {{Client}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: echo-v1
          namespace: shop
          labels: {app: echo, version: v1}
        spec:
          nodeName: node-b
          serviceAccountName: echo
          containers:
          - name: echo
            image: echo
            ports: [{name: http, containerPort: {{V1.EndPoint.Port}}}{{(Grpc is { } g1 ? $", {{name: grpc, containerPort: {g1.V1}}}" : "")}}]
        status:
          podIP: {{EchoV1}}
          podIPs: [{ip: {{EchoV1}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: echo-v2
          namespace: shop
          labels: {app: echo, version: v2}
        spec:
          nodeName: node-c
          serviceAccountName: echo
          containers:
          - name: echo
            image: echo
            ports: [{name: http, containerPort: {{V2.EndPoint.Port}}}{{(Grpc is { } g2 ? $", {{name: grpc, containerPort: {g2.V2}}}" : "")}}]
        status:
          podIP: {{EchoV2}}
          podIPs: [{ip: {{EchoV2}}}]
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: echo
          namespace: shop
          labels: {istio.io/use-waypoint: waypoint}
        spec:
          clusterIP: {{Vip}}
          selector: {app: echo}
          ports: [{name: http, port: 80, targetPort: http}]
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: echo-v1
          namespace: shop
        spec:
          clusterIP: {{OtherVip}}
          selector: {app: echo, version: v1}
          ports: [{name: http, port: 80, targetPort: http}{{GrpcServicePort}}]
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: echo-v2
          namespace: shop
        spec:
          clusterIP: {{EchoV2Vip}}
          selector: {app: echo, version: v2}
          ports: [{name: http, port: 80, targetPort: http}{{GrpcServicePort}}]
        {{(Grpc is null ? "" : GrpcService)}}
        """;

    private string GrpcServicePort => Grpc is null ? "" : ", {name: grpc, port: 50051, targetPort: grpc}";

    private string GrpcService => $$$"""
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: grpc
          namespace: shop
          labels: {istio.io/use-waypoint: waypoint}
        spec:
          clusterIP: {{{GrpcVip}}}
          selector: {app: echo}
          ports: [{name: grpc, port: 50051, targetPort: grpc}]
        """;

    private async Task<IHost> StartAgentAsync(string node, IPAddress ip, StringWriter log)
    {
        var host = InProcessAgent.Build(
            new AgentOptions
            {
                NodeName = node,
                StateDir = StateDirFor(node),
                AccessLogWriter = TextWriter.Synchronized(log),
                Manifests = [ManifestDir],
                ControlPlane = ControlPlaneFor($"ztunnel-{node}", "ztunnel", ip),
            },
            ip);
        try
        {
            await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            host.Dispose();
            throw;
        }
        _owned.Insert(0, new HostDisposer(host));
        return host;
    }

    private Uri? _istioCa;

    /// <summary>The token file a process sends to the CA: "token-of-NAME", so a test can tell the callers apart.</summary>
    public string TokenFile(string name) => Path.Combine(Dir, $"token-{name}");

    /// <summary>With the built-in CA one state dir (one root) for all; with Istio's, one each, so no shared root can make a handshake pass.</summary>
    private string StateDirFor(string name) =>
        _istioCa is null ? Dir : Directory.CreateDirectory(Path.Combine(Dir, "state-" + name)).FullName;

    private Mesh.ControlPlane.ControlPlaneOptions? ControlPlaneFor(string pod, string serviceAccount, IPAddress ip)
    {
        if (_istioCa is null)
        {
            return null;
        }
        File.WriteAllText(TokenFile(pod), $"token-of-{pod}");
        return new Mesh.ControlPlane.ControlPlaneOptions
        {
            CaAddress = _istioCa,
            TokenFile = TokenFile(pod),
            PodName = pod,
            PodNamespace = serviceAccount == "ztunnel" ? "istio-system" : "shop",
            ServiceAccount = serviceAccount,
            InstanceIp = ip.ToString(),
        };
    }

    /// <summary>curl from the client pod to http://VIP{path} through node-a.</summary>
    public Task<Curl.Result> CurlAsync(string path, params string[] extra) => CurlToAsync(Vip, path, extra);

    public Task<Curl.Result> CurlToAsync(IPAddress vip, string path, params string[] extra) =>
        Curl.RunAsync(Client, AgentA.EndPoints["socks5"], $"http://{vip}{path}", extra);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "read as mesh.GetAdminAsync beside the fixture's other calls")]
    public async Task<string> GetAdminAsync(IPEndPoint endpoint, string path)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        return await http.GetStringAsync($"http://{endpoint}{path}");
    }

    public async ValueTask DisposeAsync()
    {
        if (Waypoint is not null)
        {
            try
            {
                await Waypoint.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (Exception)
            {
            }
            await Waypoint.DisposeAsync();
        }
        foreach (var d in _owned)
        {
            try
            {
                await d.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (Exception)
            {
            }
        }
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The gRPC servers' ports on echo v1's and echo v2's addresses.</summary>
    public sealed record GrpcPorts(int V1, int V2);

    private sealed class HostDisposer(IHost host) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));
            }
            finally
            {
                host.Dispose();
            }
        }
    }
}
