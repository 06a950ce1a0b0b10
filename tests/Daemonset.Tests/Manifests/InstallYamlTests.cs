extern alias KubeFull;

using System.Text.RegularExpressions;
using Ambient.Daemonset.Tests.Support;
using Ambient.InstallCni.Cli;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes.Api;
using KubeFull::k8s;
using KubeFull::k8s.Models;

namespace Ambient.Daemonset.Tests.Manifests;

/// <summary>
/// What install.yaml promises beyond its schema: least privileges, the agent's pod as Istio ships ztunnel's, and
/// the pieces fitting each other (the agent's config, the installer's settings, mounts, images) as read by the
/// agent's and the installer's own parsers.
/// </summary>
public sealed partial class InstallYamlTests
{
    private static readonly string[] ReadVerbs = ["get", "list", "watch"];

    /// <summary>The kinds the agent's Kubernetes source reads (issue 12), sorted as group/resource.</summary>
    private static readonly string[] AgentReads =
    [
        "discovery.k8s.io/endpointslices",
        "gateway.networking.k8s.io/gateways", "gateway.networking.k8s.io/grpcroutes", "gateway.networking.k8s.io/httproutes",
        "namespaces",
        "networking.istio.io/destinationrules", "networking.istio.io/serviceentries", "networking.istio.io/virtualservices", "networking.istio.io/workloadentries",
        "pods",
        "policy.linkerd.io/httplocalratelimitpolicies", "policy.linkerd.io/servers",
        "security.istio.io/authorizationpolicies", "security.istio.io/peerauthentications",
        "services",
        "telemetry.istio.io/telemetries"
    ];

    [Fact]
    public void Everything_namespaced_lives_in_ambient_system()
    {
        Assert.Equal(Install.Namespace, Assert.Single(Install.Objects.OfType<V1Namespace>()).Metadata.Name);
        foreach (var o in Install.Objects.OfType<IKubernetesObject<V1ObjectMeta>>().Where(o => o is not (V1Namespace or V1ClusterRole or V1ClusterRoleBinding)))
        {
            Assert.Equal(Install.Namespace, o.Metadata.NamespaceProperty);
        }
    }

    [Fact]
    public void The_agent_may_read_exactly_the_kinds_its_source_watches_and_write_nothing()
    {
        var role = Assert.Single(Install.Objects.OfType<V1ClusterRole>());
        var granted = role.Rules.SelectMany(r =>
        {
            Assert.Equal(ReadVerbs, r.Verbs);
            Assert.Null(r.ResourceNames);
            Assert.Null(r.NonResourceURLs);
            return r.ApiGroups.SelectMany(g => r.Resources.Select(res => g.Length == 0 ? res : $"{g}/{res}"));
        }).Order(StringComparer.Ordinal);

        Assert.Equal(AgentReads, granted);
        // ...which are exactly the kinds the agent's API watcher lists and watches (--kubernetes): a kind added
        // there without a rule here would be forbidden in a cluster, and readiness waits for its first list.
        Assert.Equal(
            AgentReads,
            KubeResource.MeshKinds.Select(k => k.Group.Length == 0 ? k.Plural : $"{k.Group}/{k.Plural}").Order(StringComparer.Ordinal));

        var binding = Assert.Single(Install.Objects.OfType<V1ClusterRoleBinding>());
        Assert.Equal(("ClusterRole", role.Metadata.Name), (binding.RoleRef.Kind, binding.RoleRef.Name));
        var subject = Assert.Single(binding.Subjects);
        Assert.Equal(("ServiceAccount", Install.Agent.Spec.Template.Spec.ServiceAccountName, Install.Namespace), (subject.Kind, subject.Name, subject.NamespaceProperty));
    }

    [Fact]
    public void The_installer_may_only_get_its_own_daemonset()
    {
        var role = Assert.Single(Install.Objects.OfType<V1Role>());
        var rule = Assert.Single(role.Rules);
        Assert.Equal(["apps"], rule.ApiGroups);
        Assert.Equal(["daemonsets"], rule.Resources);
        Assert.Equal([Install.Installer.Metadata.Name], rule.ResourceNames);
        Assert.Equal(["get"], rule.Verbs);

        var binding = Assert.Single(Install.Objects.OfType<V1RoleBinding>());
        Assert.Equal(("Role", role.Metadata.Name), (binding.RoleRef.Kind, binding.RoleRef.Name));
        Assert.Equal(Install.Installer.Spec.Template.Spec.ServiceAccountName, Assert.Single(binding.Subjects).Name);
        Assert.Equal(Install.Installer.Metadata.Name, Install.Env(Install.Installer)["AMBIENT_CNI_DAEMONSET"]);
    }

    [Fact]
    public void The_agent_pod_is_shaped_like_istios_ztunnel()
    {
        var ds = Install.Agent;
        var pod = ds.Spec.Template.Spec;
        var c = Install.Container(ds);

        Assert.NotEqual(true, pod.HostNetwork);
        Assert.Equal("system-node-critical", pod.PriorityClassName);
        Assert.Equal(30, pod.TerminationGracePeriodSeconds);
        var toleration = Assert.Single(pod.Tolerations);
        Assert.Equal(("Exists", null, null), (toleration.OperatorProperty, toleration.Key, toleration.Effect));
        Assert.Equal("RollingUpdate", ds.Spec.UpdateStrategy.Type);
        Assert.Equal(("1", "0"), (ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge.Value, ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.Value));
        Assert.Equal(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Metadata.Labels.Where(l => ds.Spec.Selector.MatchLabels.ContainsKey(l.Key)));

        var sc = c.SecurityContext;
        Assert.Equal(["ALL"], sc.Capabilities.Drop);
        Assert.Equal(["NET_ADMIN", "SYS_ADMIN", "NET_RAW"], sc.Capabilities.Add);
        Assert.Equal((false, false, true), (sc.Privileged, sc.AllowPrivilegeEscalation, sc.ReadOnlyRootFilesystem));

        Assert.Equal("/healthz/ready", c.ReadinessProbe.HttpGet.Path);
        Assert.Equal("15021", c.ReadinessProbe.HttpGet.Port.Value);

        var env = Install.Env(ds);
        Assert.Equal("fieldRef:spec.nodeName", env["NODE_NAME"]);
        Assert.Equal("fieldRef:metadata.name", env["POD_NAME"]);
        Assert.Equal("fieldRef:metadata.namespace", env["POD_NAMESPACE"]);
        Assert.Equal("fieldRef:status.podIP", env["INSTANCE_IP"]);

        var netns = c.VolumeMounts.Single(m => m.MountPath == "/var/run/netns");
        Assert.Equal("HostToContainer", netns.MountPropagation);
        Assert.Equal("/var/run/netns", Install.HostPathOf(ds, "/var/run/netns"));
        Assert.Equal("/var/run/ambient", Install.HostPathOf(ds, "/var/run/ambient"));
    }

    [Fact]
    public void The_installer_pod_writes_the_hosts_cni_dirs_with_no_capability()
    {
        var ds = Install.Installer;
        var c = Install.Container(ds);
        var env = Install.Env(ds);

        Assert.True(ds.Spec.Template.Spec.HostNetwork);
        Assert.Equal("system-node-critical", ds.Spec.Template.Spec.PriorityClassName);
        Assert.Equal("Exists", Assert.Single(ds.Spec.Template.Spec.Tolerations).OperatorProperty);
        Assert.Equal("/etc/cni/net.d", Install.HostPathOf(ds, env["AMBIENT_CNI_CONF_DIR"]));
        Assert.Equal("/opt/cni/bin", Install.HostPathOf(ds, env["AMBIENT_CNI_BIN_DIR"]));
        Assert.Equal(["ALL"], c.SecurityContext.Capabilities.Drop);
        Assert.Null(c.SecurityContext.Capabilities.Add);
        Assert.Equal((false, false, true), (c.SecurityContext.Privileged, c.SecurityContext.AllowPrivilegeEscalation, c.SecurityContext.ReadOnlyRootFilesystem));
        Assert.Equal(["install-cni", "check"], c.ReadinessProbe.Exec.Command);
    }

    /// <summary>
    /// The installer's environment, as the kubelet fills it in on a node, goes through install-cni's own parser,
    /// as do its arguments and its readiness probe's; the plugin entry it will write must point at the agent's
    /// socket and enrollment file from the ConfigMap, and exclude the namespace the agent runs in.
    /// </summary>
    [Fact]
    public void The_installers_settings_parse_and_match_the_agents_config()
    {
        var env = Install.Env(Install.Installer)
            .Select(kv => kv.Value == "fieldRef:metadata.namespace" ? KeyValuePair.Create(kv.Key, Install.Namespace) : kv)
            .ToDictionary();
        Assert.DoesNotContain(env.Values, v => v.StartsWith("fieldRef:", StringComparison.Ordinal));
        env["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";
        env["KUBERNETES_SERVICE_PORT"] = "443";
        var c = Install.Container(Install.Installer);

        var (options, _, error) = InstallerOptions.Parse([.. c.Args], name => env.GetValueOrDefault(name));
        Assert.Null(error);
        var (probe, _, probeError) = InstallerOptions.Parse([.. c.ReadinessProbe.Exec.Command.Skip(1)], name => env.GetValueOrDefault(name));
        Assert.Null(probeError);

        Assert.Equal(InstallerCommand.Run, options!.Command);
        Assert.Equal(InstallerCommand.Check, probe!.Command);
        Assert.Equal(ExitAction.Auto, options.OnExit);
        Assert.Equal("https://10.96.0.1:443", options.ApiServer);
        Assert.Contains(Install.Namespace, options.Entry.ExcludeNamespaces);
        Assert.Contains("kube-system", options.Entry.ExcludeNamespaces);
        Assert.Equal(options.Entry.Render(null), probe.Entry.Render(null));

        var agent = AgentConfig();
        Assert.Equal(agent.InPod.CniSocket, options.Entry.AgentSocket);
        Assert.Equal(agent.InPod.EnrollmentFile, options.Entry.EnrollmentFile);
        // Those are host paths: the agent's container sees them at the same place through its hostPath mount.
        Assert.Equal(Path.GetDirectoryName(agent.InPod.CniSocket), Install.HostPathOf(Install.Agent, Path.GetDirectoryName(agent.InPod.CniSocket)!));
    }

    /// <summary>The ConfigMap's config.yaml is valid for the agent's own loader, in in-pod mode, reading the CA from the Secret.</summary>
    [Fact]
    public void The_agents_config_loads_and_the_args_point_at_it()
    {
        var config = AgentConfig();

        Assert.Equal(AgentMode.InPod, config.Mode);
        Assert.Equal("/var/lib/ambient", config.StateDir);
        Assert.Equal(config.StateDir, Install.HostPathOf(Install.Agent, config.StateDir!));
        Assert.True(config.DrainTimeout < TimeSpan.FromSeconds(Install.Agent.Spec.Template.Spec.TerminationGracePeriodSeconds!.Value),
            "connections must drain before the kubelet kills the agent");

        var c = Install.Container(Install.Agent);
        Assert.Equal(["--config", "/etc/ambient/config.yaml", "--node", "$(NODE_NAME)", "--kubernetes"], c.Args);
        Assert.Null(c.Command);
        var configMount = c.VolumeMounts.Single(m => m.MountPath == "/etc/ambient");
        var configVolume = Install.Agent.Spec.Template.Spec.Volumes.Single(v => v.Name == configMount.Name);
        Assert.Equal("ambient-config", configVolume.ConfigMap.Name);
        // $(VAR) in args is expanded by the kubelet from the container's env; an undefined one stays literal.
        var env = Install.Env(Install.Agent);
        Assert.All(VarReference().Matches(string.Join(' ', c.Args)), m => Assert.True(env.ContainsKey(m.Groups[1].Value), m.Value));
    }

    /// <summary>
    /// The agent itself reads its command line from install.yaml (with $(NODE_NAME) as the kubelet expands it and
    /// the ConfigMap's file where the mount puts it) and validates the config: both are what the agent accepts.
    /// </summary>
    [Fact]
    public async Task The_agent_accepts_its_command_line_from_install_yaml()
    {
        using var dir = new TempDir();
        string config = WriteAgentConfig(dir);
        var args = Install.Container(Install.Agent).Args
            .Select(a => a == "/etc/ambient/config.yaml" ? config : a.Replace("$(NODE_NAME)", "node-1", StringComparison.Ordinal))
            .Append("--validate")
            .ToList();

        var run = await ChildProcess.RunAsync("dotnet", [Repo.AgentDll, .. args]);

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains($"{config}: valid", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_mount_has_its_volume_and_the_root_filesystem_needs_no_writes()
    {
        foreach (var ds in new[] { Install.Agent, Install.Installer })
        {
            var volumes = ds.Spec.Template.Spec.Volumes.Select(v => v.Name).ToHashSet();
            Assert.All(Install.Container(ds).VolumeMounts, m => Assert.Contains(m.Name, volumes));
            Assert.True(Install.Container(ds).SecurityContext.ReadOnlyRootFilesystem);
        }
    }

    [Fact]
    public void Images_are_the_locally_built_ones_of_this_version()
    {
        Assert.Equal($"localhost/ambient/ztunnel:{Repo.Version}", Install.Container(Install.Agent).Image);
        Assert.Equal($"localhost/ambient/install-cni:{Repo.Version}", Install.Container(Install.Installer).Image);
        Assert.Matches(@"^\d+\.\d+\.\d+$", Repo.Version);
    }

    /// <summary>The agent's config with the Secret's mount path standing for a temp dir holding a CA pair.</summary>
    private static MeshConfig AgentConfig()
    {
        using var dir = new TempDir();
        string path = WriteAgentConfig(dir);
        var result = ConfigLoader.LoadFile(path);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Empty(result.Warnings);
        return result.Config!;
    }

    /// <summary>Writes the ConfigMap's config.yaml into <paramref name="dir"/>, its CA files (from the Secret's mount) next to it.</summary>
    private static string WriteAgentConfig(TempDir dir)
    {
        var configMap = Install.One<V1ConfigMap>("ambient-config");
        string yaml = configMap.Data["config.yaml"];
        var c = Install.Container(Install.Agent);
        var caMount = c.VolumeMounts.Single(m => Install.Agent.Spec.Template.Spec.Volumes.Single(v => v.Name == m.Name).Secret is not null);
        Assert.Contains($"certFile: {caMount.MountPath}/tls.crt", yaml, StringComparison.Ordinal);
        Assert.Contains($"keyFile: {caMount.MountPath}/tls.key", yaml, StringComparison.Ordinal);
        File.WriteAllText(dir.File("tls.crt"), "certificate");
        File.WriteAllText(dir.File("tls.key"), "key");
        string path = dir.File("config.yaml");
        File.WriteAllText(path, yaml.Replace(caMount.MountPath, dir.Path, StringComparison.Ordinal));
        return path;
    }

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex VarReference();
}
