using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;

namespace Ambient.Benchmarks.Fixtures;

/// <summary>
/// Deterministic, cluster-shaped configs for the benchmarks: apps of ten replicas, one service per app, a hundred
/// workloads per namespace, HBONE everywhere. Sizes scale with the workload count so 1k and 10k are the same shape.
/// </summary>
public static class MeshFixtures
{
    public const string TrustDomain = "cluster.local";
    public const int ReplicasPerApp = 10;
    public const int WorkloadsPerNamespace = 100;
    public const int ServicePort = 80;
    public const int TargetPort = 8080;

    /// <summary>Workload i's address: 10.1.0.0 + i (room for 16M workloads).</summary>
    public static IPAddress WorkloadIp(int i) => FromUInt32(0x0A010000u + (uint)i);

    /// <summary>App a's service VIP: 10.96.0.0 + a.</summary>
    public static IPAddress ServiceVip(int app) => FromUInt32(0x0A600000u + (uint)app);

    public static string Namespace(int i) => $"ns-{i / WorkloadsPerNamespace}";

    public static string ServiceHostname(int app, string ns) => $"app-{app}.{ns}.svc.cluster.local";

    /// <summary>
    /// A mesh of <paramref name="workloads"/> workloads, workloads/10 services (one per app) and workloads/10
    /// namespace-scoped ALLOW policies (each app admits its own namespace on the target port).
    /// </summary>
    public static MeshConfig Mesh(int workloads)
    {
        var ws = ImmutableArray.CreateBuilder<Workload>(workloads);
        var ss = ImmutableArray.CreateBuilder<Service>(workloads / ReplicasPerApp);
        var ps = ImmutableArray.CreateBuilder<AuthorizationPolicy>(workloads / ReplicasPerApp);
        for (int i = 0; i < workloads; i++)
        {
            int app = i / ReplicasPerApp;
            string ns = Namespace(i);
            ws.Add(AppWorkload(i, app, ns, ServiceHostname(app, ns)));
            if (i % ReplicasPerApp == 0)
            {
                ss.Add(AppService(app, ns, ServiceHostname(app, ns), ServiceVip(app)));
                ps.Add(new AuthorizationPolicy
                {
                    Name = $"app-{app}-same-namespace",
                    Namespace = ns,
                    Scope = PolicyScope.Namespace,
                    Action = PolicyAction.Allow,
                    Rules = [Rule(new PolicyMatch { Namespaces = [Exact(ns)], DestinationPorts = [TargetPort] })],
                });
            }
        }
        return new MeshConfig
        {
            TrustDomain = TrustDomain,
            Workloads = ws.MoveToImmutable(),
            Services = ss.ToImmutable(),
            Policies = ps.ToImmutable(),
        };
    }

    /// <summary>One service (VIP <c>10.96.255.1</c>, port 80 -> 8080) backed by <paramref name="endpoints"/> HBONE workloads, plus a client.</summary>
    public static (MeshConfig Config, Service Service, Workload Client) BigService(int endpoints)
    {
        const string ns = "shop";
        string host = $"checkout.{ns}.svc.cluster.local";
        var ws = ImmutableArray.CreateBuilder<Workload>(endpoints + 1);
        for (int i = 0; i < endpoints; i++)
        {
            ws.Add(AppWorkload(i, 0, ns, host));
        }
        var client = new Workload
        {
            Uid = "cluster1//v1/Pod/web/frontend-0",
            Name = "frontend-0",
            Namespace = "web",
            ServiceAccount = "frontend",
            WorkloadIps = [IPAddress.Parse("10.250.0.1")],
            Protocol = InboundProtocol.Hbone,
            Node = "node-0",
        };
        ws.Add(client);
        var service = AppService(0, ns, host, IPAddress.Parse("10.96.255.1")) with { Name = "checkout" };
        return (new MeshConfig { TrustDomain = TrustDomain, Workloads = ws.MoveToImmutable(), Services = [service] }, service, client);
    }

    internal static Workload AppWorkload(int i, int app, string ns, string serviceHost) => new()
    {
        Uid = $"cluster1//v1/Pod/{ns}/app-{app}-{i}",
        Name = $"app-{app}-{i}",
        Namespace = ns,
        ServiceAccount = $"app-{app}",
        WorkloadIps = [WorkloadIp(i)],
        Protocol = InboundProtocol.Hbone,
        Node = $"node-{i % 50}",
        ClusterId = "cluster1",
        WorkloadName = $"app-{app}",
        WorkloadType = "deployment",
        CanonicalName = $"app-{app}",
        CanonicalRevision = "v1",
        Locality = new Locality("us-east1", $"us-east1-{(char)('a' + i % 3)}"),
        Services = ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty.Add(
            $"{ns}/{serviceHost}", ImmutableDictionary<int, int>.Empty.Add(ServicePort, TargetPort)),
    };

    internal static Service AppService(int app, string ns, string host, IPAddress vip) => new()
    {
        Name = $"app-{app}",
        Namespace = ns,
        Hostname = host,
        Vips = [new NetworkAddress("", vip)],
        Ports = ImmutableDictionary<int, int>.Empty.Add(ServicePort, TargetPort),
    };

    internal static StringMatch Exact(string value) => new(StringMatchKind.Exact, value);

    internal static StringMatch Prefix(string value) => new(StringMatchKind.Prefix, value);

    internal static IpNet Cidr(string network, int prefix) => new(IPAddress.Parse(network), prefix);

    /// <summary>One rule of one clause of one match: the common shape of a policy.</summary>
    internal static PolicyRule Rule(PolicyMatch match) => new([new PolicyClause([match])]);

    private static IPAddress FromUInt32(uint v) =>
        new([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
}
