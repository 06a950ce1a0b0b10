using Ambient.Daemonset.Tests.Support;

namespace Ambient.Daemonset.Tests.Images;

/// <summary>
/// What CI checks of daemonset/node-test.sh without a container runtime (the script itself runs in ./test.sh as
/// root): it parses and answers --help, and podman-from-manifest.py turns install.yaml's containers into the podman
/// arguments a kubelet's settings amount to, so the node test runs exactly what the manifest says.
/// </summary>
public sealed class NodeTestScriptTests
{
    [Fact]
    public async Task The_script_parses_and_explains_itself()
    {
        string script = Repo.Daemonset("node-test.sh");
        var syntax = await ChildProcess.RunAsync("bash", ["-n", script]);
        Assert.True(syntax.ExitCode == 0, syntax.Output);
        var help = await ChildProcess.RunAsync("bash", [script, "--help"]);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--manifests", help.Stdout, StringComparison.Ordinal);
        Assert.Contains("--keep-images", help.Stdout, StringComparison.Ordinal);
        var bad = await ChildProcess.RunAsync("bash", [script, "--cluster"]);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("unknown argument '--cluster'", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_agent_runs_with_install_yamls_capabilities_mounts_and_arguments()
    {
        using var dir = new TempDir();
        dir.Sub(Path.Combine("volumes", "ambient-ca"));
        var (run, image, args) = await ConvertAsync(dir, "ztunnel", "ztunnel");

        Assert.Equal("localhost/ambient/ztunnel:" + File.ReadAllText(Repo.Daemonset("VERSION")).Trim(), image);
        Assert.Equal(["--config", "/etc/ambient/config.yaml", "--node", "node-1", "--kubernetes"], args);
        Assert.Equal(["ALL"], Values(run, "--cap-drop"));
        Assert.Equal(["NET_ADMIN", "SYS_ADMIN", "NET_RAW"], Values(run, "--cap-add"));
        Assert.Contains("--read-only", run);
        Assert.Equal(["none"], Values(run, "--network"));
        Assert.Equal(["0:0"], Values(run, "--user"));
        Assert.Equal(["no-new-privileges"], Values(run, "--security-opt"));
        var volumes = Values(run, "--volume");
        Assert.Contains("/var/run/netns:/var/run/netns:rslave", volumes);
        Assert.Contains($"{dir.Path}/host/var/lib/ambient:/var/lib/ambient", volumes);
        Assert.Contains($"{dir.Path}/volumes/ambient-ca:/var/run/secrets/ambient-ca:ro", volumes);
        Assert.Contains($"{dir.Path}/volumes/configmap-ambient-config:/etc/ambient:ro", volumes);
        Assert.Contains("mode: inpod", File.ReadAllText(Path.Combine(dir.Path, "volumes", "configmap-ambient-config", "config.yaml")), StringComparison.Ordinal);
        Assert.Contains("NODE_NAME=node-1", Values(run, "--env"));
        Assert.Equal(["/tmp:size=16m"], Values(run, "--tmpfs"));
    }

    [Fact]
    public async Task The_installer_is_on_the_host_network_and_names_the_agents_socket_at_the_nodes_path()
    {
        using var dir = new TempDir();
        var (run, image, args) = await ConvertAsync(dir, "ambient-cni", "install-cni");

        Assert.StartsWith("localhost/ambient/install-cni:", image, StringComparison.Ordinal);
        Assert.Equal(["run"], args);
        Assert.Equal(["host"], Values(run, "--network"));
        Assert.Equal(["ALL"], Values(run, "--cap-drop"));
        Assert.Empty(Values(run, "--cap-add"));
        var env = Values(run, "--env");
        // The plugin runs on the host: the agent's socket is named by its host path, under the test node's root.
        Assert.Contains($"AMBIENT_CNI_AGENT_SOCKET={dir.Path}/host/var/run/ambient/cni.sock", env);
        Assert.Contains("AMBIENT_CNI_CONF_DIR=/host/etc/cni/net.d", env);
        Assert.Contains("POD_NAMESPACE=ambient-system", env);
        Assert.Contains($"{dir.Path}/host/etc/cni/net.d:/host/etc/cni/net.d", Values(run, "--volume"));
    }

    [Fact]
    public async Task A_secret_that_was_not_provided_is_a_clear_error()
    {
        using var dir = new TempDir();
        var r = await ChildProcess.RunAsync("python3", [.. Command(dir, "ztunnel", "ztunnel")]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("secret ambient-ca: create", r.Stderr, StringComparison.Ordinal);
    }

    private static string[] Command(TempDir dir, string daemonSet, string container) =>
    [
        Repo.Daemonset("podman-from-manifest.py"), Repo.InstallYaml, daemonSet, container,
        "--host-root", Path.Combine(dir.Path, "host"), "--volumes", Path.Combine(dir.Path, "volumes"),
        "--real-host-path", "/var/run/netns", "--field", "spec.nodeName=node-1", "--field", "metadata.name=pod-1",
        "--field", "status.podIP=127.0.0.1",
    ];

    private static async Task<(List<string> Run, string Image, List<string> Args)> ConvertAsync(TempDir dir, string daemonSet, string container)
    {
        var r = await ChildProcess.RunAsync("python3", [.. Command(dir, daemonSet, container)]);
        Assert.True(r.ExitCode == 0, r.Output);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        int split = lines.IndexOf("--");
        Assert.True(split > 0, r.Stdout);
        return (lines[..split], lines[split + 1], lines[(split + 2)..]);
    }

    private static List<string> Values(List<string> run, string option)
    {
        var values = new List<string>();
        for (int i = 0; i < run.Count - 1; i++)
        {
            if (run[i] == option)
            {
                values.Add(run[i + 1]);
            }
        }
        return values;
    }
}
