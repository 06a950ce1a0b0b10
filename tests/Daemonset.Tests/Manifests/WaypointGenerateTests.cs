extern alias KubeFull;

using Ambient.Daemonset.Tests.Support;
using Ambient.Mesh.Kubernetes;
using KubeFull::k8s.Models;

namespace Ambient.Daemonset.Tests.Manifests;

/// <summary>
/// <c>waypoint generate</c>: its output fits the Kubernetes API types as install.yaml does (the Gateway, a Gateway API
/// type KubernetesClient does not model, is checked by our own translator instead), reads back as the waypoint it
/// names, and the waypoint accepts the Deployment's own command line and environment.
/// </summary>
public sealed class WaypointGenerateTests
{
    private static async Task<string> GenerateAsync(params string[] args)
    {
        var run = await ChildProcess.RunAsync("dotnet", [Repo.WaypointDll, "generate", .. args]);
        Assert.True(run.ExitCode == 0, run.Output);
        return run.Stdout;
    }

    /// <summary>The built-in kinds through the schema check; the Gateway document apart.</summary>
    private static (string Gateway, IReadOnlyList<object> Objects) Split(string yaml)
    {
        var documents = yaml.Split("\n---\n");
        string gateway = Assert.Single(documents, d => d.Contains("kind: Gateway\n", StringComparison.Ordinal));
        string rest = string.Join("\n---\n", documents.Where(d => d != gateway));
        return (gateway, KubernetesSchema.Load(rest, "waypoint generate"));
    }

    [Fact]
    public async Task The_output_passes_the_kubernetes_schema_and_is_shaped_for_the_waypoint()
    {
        string yaml = await GenerateAsync("--namespace", "shop");
        var (_, objects) = Split(yaml);

        Assert.Equal([typeof(V1ServiceAccount), typeof(V1ClusterRoleBinding), typeof(V1Deployment), typeof(V1Service)], objects.Select(o => o.GetType()));
        var sa = objects.OfType<V1ServiceAccount>().Single();
        var deployment = objects.OfType<V1Deployment>().Single();
        var service = objects.OfType<V1Service>().Single();
        var binding = objects.OfType<V1ClusterRoleBinding>().Single();
        Assert.Equal(("waypoint", "shop"), (sa.Metadata.Name, sa.Metadata.NamespaceProperty));

        var pod = deployment.Spec.Template.Spec;
        Assert.Equal("waypoint", pod.ServiceAccountName);
        var c = Assert.Single(pod.Containers);
        Assert.Equal($"localhost/ambient/waypoint:{Repo.Version}", c.Image);
        Assert.Equal("/healthz/ready", c.ReadinessProbe.HttpGet.Path);
        Assert.Equal("15021", c.ReadinessProbe.HttpGet.Port.Value);
        // Like the agent's security context, with no capability at all and not root.
        Assert.Equal(["ALL"], c.SecurityContext.Capabilities.Drop);
        Assert.Null(c.SecurityContext.Capabilities.Add);
        Assert.True(c.SecurityContext.RunAsNonRoot);
        Assert.NotEqual(0, c.SecurityContext.RunAsUser);
        Assert.True(c.SecurityContext.ReadOnlyRootFilesystem);
        Assert.False(c.SecurityContext.AllowPrivilegeEscalation);
        var volumes = pod.Volumes.Select(v => v.Name).ToHashSet();
        Assert.All(c.VolumeMounts, m => Assert.Contains(m.Name, volumes));
        // Who it is, from the downward API, and where its certificate comes from: by default the node agent's CA
        // endpoint inside the pod (built-in CA), with no token and no root to mount.
        var env = c.Env.ToDictionary(e => e.Name);
        Assert.Equal("waypoint", env["GATEWAY_NAME"].Value);
        Assert.Equal("metadata.namespace", env["GATEWAY_NAMESPACE"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("status.podIP", env["INSTANCE_IP"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("http://127.0.0.1:15012", env["CA_ADDRESS"].Value);
        Assert.False(env.ContainsKey("AUTH_TOKEN"));
        Assert.False(env.ContainsKey("CA_ROOT_CA"));
        Assert.DoesNotContain(pod.Volumes, v => v.Name is "istio-token" or "istio-ca-root-cert");

        // The Service selects the Deployment's pods and carries HBONE.
        Assert.All(service.Spec.Selector, kv => Assert.Equal(kv.Value, deployment.Spec.Template.Metadata.Labels[kv.Key]));
        Assert.Contains(service.Spec.Ports, p => p.Name == "mesh" && p.Port == 15008);
        // The binding names the install's read-only ClusterRole, which exists in install.yaml.
        Assert.Equal("ClusterRole", binding.RoleRef.Kind);
        Assert.Contains(Install.Objects.OfType<V1ClusterRole>(), r => r.Metadata.Name == binding.RoleRef.Name);
        Assert.Equal(("ServiceAccount", "waypoint", "shop"), (binding.Subjects[0].Kind, binding.Subjects[0].Name, binding.Subjects[0].NamespaceProperty));
    }

    /// <summary>--ca-address: Istio's CA (agents under istiod), with its token and root mounted as Istio publishes them.</summary>
    [Fact]
    public async Task With_a_ca_address_the_waypoint_asks_istiod_with_the_istio_ca_token_and_root()
    {
        string yaml = await GenerateAsync("--namespace", "shop", "--ca-address", "istiod.istio-system.svc:15012");
        var pod = Split(yaml).Objects.OfType<V1Deployment>().Single().Spec.Template.Spec;
        var c = pod.Containers.Single();
        var env = c.Env.ToDictionary(e => e.Name);
        Assert.Equal("istiod.istio-system.svc:15012", env["CA_ADDRESS"].Value);
        Assert.Equal("/var/run/secrets/tokens/istio-token", env["AUTH_TOKEN"].Value);
        Assert.Equal("/var/run/secrets/istio/root-cert.pem", env["CA_ROOT_CA"].Value);
        Assert.Equal("istio-ca", pod.Volumes.Single(v => v.Name == "istio-token").Projected.Sources.Single().ServiceAccountToken.Audience);
        Assert.Equal("istio-ca-root-cert", pod.Volumes.Single(v => v.Name == "istio-ca-root-cert").ConfigMap.Name);
        var volumes = pod.Volumes.Select(v => v.Name).ToHashSet();
        Assert.All(c.VolumeMounts, m => Assert.Contains(m.Name, volumes));
        Assert.Equal(3, c.VolumeMounts.Count);
    }

    [Fact]
    public async Task The_output_reads_back_as_the_waypoint_gateway_it_names()
    {
        string yaml = await GenerateAsync("--namespace", "shop", "--name", "edge", "--for", "all", "--image", "registry.example/waypoint:9");
        var read = ManifestReader.Parse(yaml, "generated.yaml");
        Assert.Empty(read.Errors);
        var translated = new KubeTranslator(new KubeTranslatorOptions { TrustDomain = "cluster.local" }).Translate(read.Objects);
        Assert.True(translated.Errors.IsEmpty, string.Join("\n", translated.Errors));

        var waypoint = Assert.Single(translated.Resources.Objects.OfType<Mesh.Model.Waypoint>());
        Assert.Equal(("shop", "edge", Mesh.Model.WaypointTraffic.All), (waypoint.Namespace, waypoint.Name, waypoint.For));
        Assert.Equal("spiffe://cluster.local/ns/shop/sa/edge", waypoint.Identity);
        Assert.Equal("edge.shop.svc.cluster.local", waypoint.ServiceHostname);
        var listener = Assert.Single(waypoint.Listeners);
        Assert.Equal(("mesh", 15008, "HBONE"), (listener.Name, listener.Port, listener.Protocol));
        var (_, objects) = Split(yaml);
        Assert.Equal("registry.example/waypoint:9", objects.OfType<V1Deployment>().Single().Spec.Template.Spec.Containers[0].Image);
    }

    /// <summary>The waypoint itself takes the Deployment's args and env (as the kubelet sets them) and validates.</summary>
    [Fact]
    public async Task The_waypoint_accepts_the_deployments_command_line_and_environment()
    {
        string yaml = await GenerateAsync("--namespace", "shop");
        using var dir = new TempDir();
        string manifests = Path.Combine(dir.Path, "waypoint.yaml");
        await File.WriteAllTextAsync(manifests, yaml);
        var c = Split(yaml).Objects.OfType<V1Deployment>().Single().Spec.Template.Spec.Containers[0];
        var env = c.Env.ToDictionary(e => e.Name, e => e.Value ?? e.ValueFrom.FieldRef.FieldPath switch
        {
            "metadata.namespace" => "shop",
            "metadata.name" => "waypoint-0",
            "spec.nodeName" => "node-1",
            "status.podIP" => "10.1.2.3",
            "spec.serviceAccountName" => "waypoint",
            var other => throw new InvalidOperationException($"unexpected fieldRef {other}"),
        });
        // --kubernetes would watch an API server; --validate reads the manifests instead and starts nothing.
        var args = c.Args.Where(a => a != "--kubernetes").Concat(["--manifests", manifests, "--validate"]).ToList();

        var run = await ChildProcess.RunAsync("dotnet", [Repo.WaypointDll, .. args], env);

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains("valid", run.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new string[0], "which namespace?")]
    [InlineData(new[] { "--namespace", "Shop_1" }, "is not a namespace name")]
    [InlineData(new[] { "--namespace", "shop", "--name", "" }, "is not a valid name")]
    [InlineData(new[] { "--namespace", "shop", "--for", "pods" }, "--for takes service, workload, all or none")]
    [InlineData(new[] { "--namespace", "shop", "--image", "a b" }, "is not an image reference")]
    [InlineData(new[] { "--namespace", "shop", "--ca-address", "ftp://x" }, "--ca-address")]
    [InlineData(new[] { "--namespace" }, "--namespace needs a namespace")]
    [InlineData(new[] { "--apply" }, "unknown argument '--apply'")]
    public async Task Bad_arguments_are_refused_with_the_reason(string[] args, string expected)
    {
        var run = await ChildProcess.RunAsync("dotnet", [Repo.WaypointDll, "generate", .. args]);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(expected, run.Stderr, StringComparison.Ordinal);
        Assert.Empty(run.Stdout);
    }

    [Fact]
    public async Task Help_describes_the_subcommand()
    {
        var run = await ChildProcess.RunAsync("dotnet", [Repo.WaypointDll, "generate", "--help"]);

        Assert.Equal(0, run.ExitCode);
        Assert.StartsWith("waypoint generate:", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("--namespace", run.Stdout, StringComparison.Ordinal);
    }
}
