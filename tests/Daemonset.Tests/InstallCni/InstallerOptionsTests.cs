using Ambient.InstallCni.Cli;

namespace Ambient.Daemonset.Tests.InstallCni;

/// <summary>How the installer is told what to do: flags over environment variables (the DaemonSet uses the latter).</summary>
public sealed class InstallerOptionsTests
{
    private static (InstallerOptions? Options, bool Help, string? Error) Parse(string[] args, Dictionary<string, string>? env = null) =>
        InstallerOptions.Parse(args, name => env is not null && env.TryGetValue(name, out var v) ? v : null);

    [Fact]
    public void Defaults_are_the_mounted_host_dirs_and_keep_on_exit()
    {
        var (o, help, error) = Parse([]);

        Assert.Null(error);
        Assert.False(help);
        Assert.Equal(InstallerCommand.Run, o!.Command);
        Assert.Equal("/host/etc/cni/net.d", o.CniConfDir);
        Assert.Equal("/host/opt/cni/bin", o.CniBinDir);
        Assert.Equal(ExitAction.Keep, o.OnExit);
        Assert.Equal(["kube-system"], [.. o.Entry.ExcludeNamespaces]);
        Assert.Equal("/var/run/ambient/cni.sock", o.Entry.AgentSocket);
        Assert.Equal("/var/run/ambient/enrollment.json", o.Entry.EnrollmentFile);
    }

    [Fact]
    public void Environment_is_read_and_flags_win()
    {
        var env = new Dictionary<string, string>
        {
            ["AMBIENT_CNI_CONF_DIR"] = "/env/net.d",
            ["AMBIENT_CNI_BIN_DIR"] = "/env/bin",
            ["AMBIENT_CNI_AGENT_TIMEOUT"] = "7.5",
            ["AMBIENT_CNI_PLUGIN_LOG_LEVEL"] = "debug",
        };

        var (o, _, error) = Parse(["install", "--cni-bin-dir", "/flag/bin", "--plugin-log-file=/var/log/a.log"], env);

        Assert.Null(error);
        Assert.Equal(InstallerCommand.Install, o!.Command);
        Assert.Equal("/env/net.d", o.CniConfDir);
        Assert.Equal("/flag/bin", o.CniBinDir);
        Assert.Equal(7.5, o.Entry.AgentTimeoutSeconds);
        Assert.Equal("debug", o.Entry.LogLevel);
        Assert.Equal("/var/log/a.log", o.Entry.LogFile);
    }

    [Fact]
    public void The_installers_own_namespace_is_excluded_unless_the_list_is_given()
    {
        var (o, _, _) = Parse([], new() { ["POD_NAMESPACE"] = "mesh-system" });
        Assert.Equal(["kube-system", "mesh-system"], [.. o!.Entry.ExcludeNamespaces]);

        var (given, _, _) = Parse(["--exclude-namespaces", " a, b ,a,"], new() { ["POD_NAMESPACE"] = "mesh-system" });
        Assert.Equal(["a", "b"], [.. given!.Entry.ExcludeNamespaces]);
    }

    [Fact]
    public void Auto_finds_the_api_server_in_the_pod_environment()
    {
        var env = new Dictionary<string, string>
        {
            ["AMBIENT_CNI_ON_EXIT"] = "auto",
            ["AMBIENT_CNI_DAEMONSET"] = "ambient-cni",
            ["POD_NAMESPACE"] = "ambient-system",
            ["KUBERNETES_SERVICE_HOST"] = "fd00::1",
            ["KUBERNETES_SERVICE_PORT"] = "6443",
        };

        var (o, _, error) = Parse([], env);

        Assert.Null(error);
        Assert.Equal(ExitAction.Auto, o!.OnExit);
        Assert.Equal("https://[fd00::1]:6443", o.ApiServer);
    }

    [Theory]
    [InlineData(new[] { "--on-exit", "sometimes" }, "--on-exit takes keep, uninstall or auto, not 'sometimes'")]
    [InlineData(new[] { "--on-exit", "auto" }, "--on-exit auto needs --daemonset NAME and --namespace NS")]
    [InlineData(new[] { "--on-exit", "auto", "--daemonset", "d", "--namespace", "n" }, "--on-exit auto needs the API server")]
    [InlineData(new[] { "--api-server", "http://127.0.0.1:8080" }, "--api-server must be an https URL")]
    [InlineData(new[] { "--cni-conf-dir", "etc/cni" }, "--cni-conf-dir must be an absolute path, not 'etc/cni'")]
    [InlineData(new[] { "--agent-timeout", "0" }, "--agent-timeout takes seconds, 0 < n <= 3600, not '0'")]
    [InlineData(new[] { "--plugin-log-level", "verbose" }, "--plugin-log-level takes debug, info, warn, error or none")]
    [InlineData(new[] { "--resync", "-1" }, "--resync takes seconds between 0 and 86400")]
    [InlineData(new[] { "--cni-bin-dir" }, "--cni-bin-dir needs a value")]
    [InlineData(new[] { "--frobnicate", "x" }, "unknown argument '--frobnicate'")]
    [InlineData(new[] { "reinstall" }, "unknown command 'reinstall'")]
    public void Bad_arguments_are_named(string[] args, string expected)
    {
        var (o, _, error) = Parse(args);

        Assert.Null(o);
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_environment_variable_is_named()
    {
        var (_, _, error) = Parse([], new() { ["AMBIENT_CNI_AGENT_SOCKET"] = "/" + new string('s', 120) });

        Assert.StartsWith("AMBIENT_CNI_AGENT_SOCKET: --agent-socket", error, StringComparison.Ordinal);
        Assert.Contains("107 bytes", error, StringComparison.Ordinal);
    }
}
