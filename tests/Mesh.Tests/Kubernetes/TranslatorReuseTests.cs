using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>
/// One translator serves many runs (the API source translates after every batch of watch events): what it remembers
/// of unchanged objects must never leak into the result of a run where they changed or went away.
/// </summary>
public sealed class TranslatorReuseTests
{
    private static KubeObject[] Read(string yaml)
    {
        ManifestReadResult read = ManifestReader.Parse(yaml, "reuse.yaml");
        Assert.True(read.Ok, string.Join("\n", read.Errors));
        return [.. read.Objects];
    }

    private const string Mesh = """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec: {clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: web-0, namespace: shop, labels: {app: web}}
        spec: {containers: [{name: a, ports: [{name: http, containerPort: 8080}]}]}
        status: {podIP: 10.0.0.1}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: typo, namespace: shop}
        spec: {rules: [{from: [{source: {namespace: [a]}}]}]}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: l7, namespace: shop}
        spec: {rules: [{to: [{operation: {methods: [GET]}}]}]}
        """;

    [Fact]
    public void RepeatedRunsGiveTheSameResultAndMessages()
    {
        var translator = new KubeTranslator();
        KubeObject[] objects = Read(Mesh);
        TranslationResult first = translator.Translate(objects);
        TranslationResult second = translator.Translate(objects);
        Assert.Equal(first.Errors.ToArray(), second.Errors.ToArray());
        Assert.Equal(first.Warnings.ToArray(), second.Warnings.ToArray());
        Assert.Single(second.Errors); // the typo'd policy, reported again, not forgotten
        Assert.Single(second.Warnings); // the L7 rule dropped at ztunnel
        Assert.Equal(8080, second.Resources.Workloads.Single().Services["shop/web.shop.svc.cluster.local"][80]);
    }

    [Fact]
    public void UnchangedResourcesKeepTheirInstanceSoChangesShowByReference()
    {
        var translator = new KubeTranslator();
        KubeObject[] objects = Read(Mesh);
        TranslationResult first = translator.Translate(objects);
        // Read again from text: new object instances with the same content, as after a re-list.
        TranslationResult second = translator.Translate(Read(Mesh));
        Assert.Same(first.Resources.Workloads.Single(), second.Resources.Workloads.Single());
        Assert.Same(first.Resources.Services.Single(), second.Resources.Services.Single());
        Assert.Same(first.Resources.Policies.Single(), second.Resources.Policies.Single());

        // One pod changed among the rest: only its workload is a new instance.
        KubeObject[] more = Read(Mesh + "\n---\n" + KubeTestUtil.RunningPod("shop", "api-0", "10.0.0.9", "app: api"));
        TranslationResult third = translator.Translate(more);
        KubeObject[] relabelled = Read(Mesh.Replace("status: {podIP: 10.0.0.1}", "status: {podIP: 10.0.0.1, conditions: [{type: Ready, status: \"False\"}]}", StringComparison.Ordinal)
            + "\n---\n" + KubeTestUtil.RunningPod("shop", "api-0", "10.0.0.9", "app: api"));
        TranslationResult fourth = translator.Translate(relabelled);
        Assert.NotSame(third.Resources.Workloads.Single(w => w.Name == "web-0"), fourth.Resources.Workloads.Single(w => w.Name == "web-0"));
        Assert.Equal(HealthStatus.Unhealthy, fourth.Resources.Workloads.Single(w => w.Name == "web-0").Status);
        Assert.Same(third.Resources.Workloads.Single(w => w.Name == "api-0"), fourth.Resources.Workloads.Single(w => w.Name == "api-0"));
        Assert.Same(third.Resources.Services.Single(), fourth.Resources.Services.Single());
    }

    [Fact]
    public void ReplacedObjectIsReadAgainAndRemovedObjectIsGone()
    {
        var translator = new KubeTranslator();
        KubeObject[] objects = Read(Mesh);
        translator.Translate(objects);

        // A watch event: the pod got a new IP and renamed its port; the policy typo was fixed.
        KubeObject[] changed = Read(Mesh
            .Replace("status: {podIP: 10.0.0.1}", "status: {podIP: 10.0.0.2}", StringComparison.Ordinal)
            .Replace("containerPort: 8080", "containerPort: 9090", StringComparison.Ordinal)
            .Replace("namespace: [a]", "namespaces: [a]", StringComparison.Ordinal));
        TranslationResult r = translator.Translate([objects[0], changed[1], changed[2], objects[3]]);
        Assert.Empty(r.Errors);
        Workload w = r.Resources.Workloads.Single();
        Assert.Equal(IPAddress.Parse("10.0.0.2"), w.WorkloadIps.Single());
        Assert.Equal(9090, w.Services["shop/web.shop.svc.cluster.local"][80]);
        Assert.Equal(2, r.Resources.Policies.Length);

        TranslationResult without = translator.Translate([objects[0]]);
        Assert.Empty(without.Resources.Workloads);
        Assert.Empty(without.Errors);
        Assert.Empty(without.Warnings);
    }

    [Fact]
    public void EndpointSliceMembershipDoesNotOutliveTheSlice()
    {
        var translator = new KubeTranslator();
        KubeObject[] objects = Read(Mesh + """

            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            endpoints: [{addresses: [10.0.0.1], targetRef: {kind: Pod, name: web-0, namespace: shop}}]
            ports: [{name: "", port: 7070}]
            """);
        Assert.Equal(7070, translator.Translate(objects).Resources.Workloads.Single().Services["shop/web.shop.svc.cluster.local"][80]);
        // The slice is gone: the selector decides again, and the pod's own named port is used.
        Assert.Equal(8080, translator.Translate(objects[..^1]).Resources.Workloads.Single().Services["shop/web.shop.svc.cluster.local"][80]);
    }
}

/// <summary>Reusing a previous instance must never hide a change: every property of the model counts.</summary>
public sealed class StableOutputTests
{
    private static readonly Workload BaseWorkload = new()
    {
        Uid = "c//Pod/ns/w", Name = "w", Namespace = "ns", WorkloadIps = [IPAddress.Parse("10.0.0.1")],
        AuthorizationPolicies = ["ns/p"], Labels = ImmutableDictionary<string, string>.Empty.Add("app", "w"),
        Services = ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty.Add("ns/s", ImmutableDictionary<int, int>.Empty.Add(80, 8080)),
    };

    private static readonly Service BaseService = new()
    {
        Name = "s", Namespace = "ns", Hostname = "s.ns.svc.cluster.local", Vips = [new NetworkAddress("", IPAddress.Parse("10.96.0.1"))],
        Ports = ImmutableDictionary<int, int>.Empty.Add(80, 8080), SubjectAltNames = ["spiffe://td/ns/ns/sa/s"],
        LoadBalancing = new LoadBalancing([LoadBalancingScope.Zone], LoadBalancingMode.Failover),
    };

    public static TheoryData<string> WorkloadProperties() => [.. typeof(Workload).GetProperties().Where(p => p.CanWrite).Select(p => p.Name)];

    public static TheoryData<string> ServiceProperties() => [.. typeof(Service).GetProperties().Where(p => p.CanWrite).Select(p => p.Name)];

    [Theory]
    [MemberData(nameof(WorkloadProperties))]
    public void ChangedWorkloadPropertyIsNotReused(string property)
    {
        Workload changed = With(BaseWorkload, property);
        Workload equal = With(BaseWorkload, null);
        var stable = new StableOutput(new MeshResources { Workloads = [BaseWorkload] });
        Assert.Same(BaseWorkload, stable.Reuse(new MeshResources { Workloads = [equal] }).Workloads[0]);
        if (property != nameof(Workload.Uid))
        {
            Assert.Same(changed, stable.Reuse(new MeshResources { Workloads = [changed] }).Workloads[0]);
        }
    }

    [Theory]
    [MemberData(nameof(ServiceProperties))]
    public void ChangedServicePropertyIsNotReused(string property)
    {
        Service changed = With(BaseService, property);
        var stable = new StableOutput(new MeshResources { Services = [BaseService] });
        Assert.Same(BaseService, stable.Reuse(new MeshResources { Services = [With(BaseService, null)] }).Services[0]);
        Assert.Same(changed, stable.Reuse(new MeshResources { Services = [changed] }).Services[0]);
    }

    /// <summary>A copy with equal content but fresh collections, and <paramref name="property"/> (if any) changed.</summary>
    private static T With<T>(T original, string? property)
        where T : class
    {
        var clone = (T)typeof(T).GetMethod("<Clone>$")!.Invoke(original, null)!;
        foreach (var p in typeof(T).GetProperties().Where(p => p.CanWrite))
        {
            object? v = p.GetValue(clone);
            object? fresh = v switch
            {
                ImmutableArray<IPAddress> a => ImmutableArray.CreateRange(a),
                ImmutableArray<string> a => ImmutableArray.CreateRange(a),
                ImmutableArray<NetworkAddress> a => ImmutableArray.CreateRange(a),
                ImmutableDictionary<string, string> d => ImmutableDictionary.CreateRange(d),
                ImmutableDictionary<int, int> d => ImmutableDictionary.CreateRange(d),
                ImmutableDictionary<int, string> d => ImmutableDictionary.CreateRange(d),
                ImmutableDictionary<string, ImmutableDictionary<int, int>> d => d.ToImmutableDictionary(kv => kv.Key, kv => ImmutableDictionary.CreateRange(kv.Value)),
                LoadBalancing lb => lb with { RoutingPreference = ImmutableArray.CreateRange(lb.RoutingPreference) },
                _ => v,
            };
            p.SetValue(clone, p.Name == property ? Change(p.PropertyType, v) : fresh);
        }
        return clone;
    }

    private static object? Change(Type type, object? v) => v switch
    {
        string s => s + "x",
        int i => i + 1,
        Enum e => Enum.GetValues(type).Cast<object>().First(x => !x.Equals(e)),
        ImmutableArray<IPAddress> a => a.Add(IPAddress.Parse("10.0.0.2")),
        ImmutableArray<string> a => a.Add("more"),
        ImmutableArray<NetworkAddress> a => a.Add(new NetworkAddress("", IPAddress.Parse("10.96.0.2"))),
        ImmutableDictionary<string, string> d => d.SetItem("app", "other"),
        ImmutableDictionary<int, int> d => d.SetItem(80, 9090),
        ImmutableDictionary<int, string> d => d.SetItem(80, "tcp"),
        ImmutableDictionary<string, ImmutableDictionary<int, int>> d => d.SetItem("ns/s", ImmutableDictionary<int, int>.Empty.Add(80, 9090)),
        Locality => new Locality("elsewhere"),
        LoadBalancing lb => lb with { RoutingPreference = [LoadBalancingScope.Region] },
        null when type == typeof(GatewayAddress) => new GatewayAddress("w.ns.svc.cluster.local", "ns", null, ""),
        null when type == typeof(LoadBalancing) => new LoadBalancing([], LoadBalancingMode.Strict),
        _ => throw new InvalidOperationException($"no change known for {type}"),
    };
}
