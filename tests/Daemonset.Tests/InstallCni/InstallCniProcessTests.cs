using System.Text.Json.Nodes;
using Ambient.Daemonset.Tests.Support;

namespace Ambient.Daemonset.Tests.InstallCni;

/// <summary>
/// install-cni as the DaemonSet runs it: a long-running process that keeps the entry in place while other
/// programs rewrite the directory, and decides at SIGTERM between uninstall and keep.
/// </summary>
public sealed class InstallCniProcessTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly Node _node = new();

    public void Dispose() => _node.Dispose();

    private static bool EntryIsLast(string file)
    {
        try
        {
            var plugins = JsonNode.Parse(File.ReadAllText(file))?["plugins"]?.AsArray();
            return plugins is { Count: > 0 } && (string?)plugins[^1]!["type"] == "ambient-cni"
                && plugins.Count(p => (string?)p!["type"] == "ambient-cni") == 1;
        }
        catch (Exception ex) when (ex is IOException or System.Text.Json.JsonException)
        {
            return false;
        }
    }

    private static async Task Eventually(Func<bool> condition, string what, ChildProcess process)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting until {what}; install-cni output:\n{process.Output}");
            }

            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Help_and_usage_errors()
    {
        var help = await ChildProcess.RunInstallCniAsync(["--help"]);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("install-cni uninstall [options]", help.Stdout, StringComparison.Ordinal);

        var bad = await ChildProcess.RunInstallCniAsync(["--on-exit", "never"]);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("install-cni: --on-exit takes keep, uninstall or auto, not 'never'\nRun 'install-cni --help' for usage.", bad.Stderr, StringComparison.Ordinal);

        var missing = await ChildProcess.RunInstallCniAsync(["install", "--cni-conf-dir", _node.Conf("nope"), "--cni-bin-dir", _node.BinDir, "--plugin-binary", _node.Source]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains($"--cni-conf-dir {_node.Conf("nope")} does not exist", missing.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reinstalls_when_another_cni_rewrites_its_config_or_the_binary_goes()
    {
        string conflist = _node.Write("10-podman.conflist", Samples.PrettyConflist);
        // --resync 0: only file events can bring the entry back, so this proves the watch.
        await using var p = ChildProcess.InstallCni([.. _node.Args, "--resync", "0"]);
        await p.WaitForOutputAsync("added ambient-cni as the last plugin of " + conflist);
        Assert.True(EntryIsLast(conflist));

        // The primary CNI rewrites its file the atomic way (temp + rename)...
        File.WriteAllText(_node.Conf(".podman.tmp"), Samples.PrettyConflist);
        File.Move(_node.Conf(".podman.tmp"), conflist, overwrite: true);
        await Eventually(() => EntryIsLast(conflist), "the entry is back after a rename over the file", p);

        // ...or in place.
        File.WriteAllText(conflist, Samples.PrettyConflist.Replace("10.88.0.0/16", "10.89.0.0/16", StringComparison.Ordinal));
        await Eventually(() => EntryIsLast(conflist) && File.ReadAllText(conflist).Contains("10.89.0.0/16", StringComparison.Ordinal),
            "the entry is back after an in-place rewrite, keeping the new content", p);

        File.Delete(_node.InstalledBinary);
        await Eventually(() => File.Exists(_node.InstalledBinary), "the binary is back", p);

        // A malformed rewrite is refused and left as it is; the fixed file gets the entry again.
        File.WriteAllText(conflist, "{\"cniVersion\": \"1.0.0\", \"name\": \"podman\", \"plugins\": [");
        await p.WaitForOutputAsync("refusing to edit the primary CNI config: " + conflist + " is not valid JSON");
        Assert.Equal("{\"cniVersion\": \"1.0.0\", \"name\": \"podman\", \"plugins\": [", File.ReadAllText(conflist));
        File.WriteAllText(conflist, Samples.CompactConflist);
        await Eventually(() => EntryIsLast(conflist), "the entry is back once the file is valid again", p);

        p.Terminate();
        var exit = await p.WaitForExitAsync(Timeout);
        Assert.Equal(0, exit.ExitCode);
    }

    [Fact]
    public async Task A_restart_leaves_the_install_in_place()
    {
        string conflist = _node.Write("10-podman.conflist", Samples.PrettyConflist);
        await using var p = ChildProcess.InstallCni(_node.Args);
        await p.WaitForOutputAsync("added ambient-cni");
        string installed = File.ReadAllText(conflist);

        p.Terminate();
        var exit = await p.WaitForExitAsync(Timeout);

        Assert.Equal(0, exit.ExitCode);
        Assert.Contains("leaving ambient-cni installed so new pods fail closed", exit.Output, StringComparison.Ordinal);
        Assert.Equal(installed, File.ReadAllText(conflist));
        Assert.True(File.Exists(_node.InstalledBinary));
    }

    [Fact]
    public async Task An_uninstall_gives_back_the_original_files()
    {
        string conf = _node.Write("10-bridge.conf", Samples.BridgeConf);
        await using var p = ChildProcess.InstallCni([.. _node.Args, "--on-exit", "uninstall"]);
        await p.WaitForOutputAsync("converted " + conf);

        p.Terminate();
        var exit = await p.WaitForExitAsync(Timeout);

        Assert.Equal(0, exit.ExitCode);
        Assert.Contains("stopping: uninstall (--on-exit uninstall)", exit.Output, StringComparison.Ordinal);
        Assert.Equal(Samples.BridgeConf, File.ReadAllText(conf));
        Assert.Equal(["10-bridge.conf"], Directory.GetFiles(_node.ConfDir).Select(Path.GetFileName));
        Assert.False(File.Exists(_node.InstalledBinary));
    }

    public static TheoryData<int, int, bool, string> AutoCases() => new()
    {
        // at start-up, at SIGTERM, uninstalls?, why
        { 200, 200, false, "exists and is not being deleted: a restart or upgrade" },
        { 200, 404, true, "no longer exists" },
        { 200, 299, true, "is being deleted (deletionTimestamp 2026-01-01T00:00:00Z)" },
        { 200, 403, true, "which it allowed at start-up: the install's RBAC is being deleted" },
        { 403, 403, false, "keeping the install (remove it by hand with 'install-cni uninstall'" },
        { 200, 500, false, "the API server answered 500" },
    };

    /// <summary>--on-exit auto asks the API server (a stand-in on loopback) about the installer's DaemonSet.</summary>
    [Theory]
    [MemberData(nameof(AutoCases))]
    public async Task Auto_uninstalls_only_when_the_daemonset_is_going_away(int atStart, int atExit, bool uninstalls, string why)
    {
        await using var api = new FakeApiServer(_node.Root);
        static (int, string) Answer(int code) => code switch
        {
            200 => (200, FakeApiServer.DaemonSet(deleting: false)),
            299 => (200, FakeApiServer.DaemonSet(deleting: true)),
            _ => (code, """{"kind":"Status","code":%d}""".Replace("%d", code.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)),
        };
        api.Respond = _ => Answer(atStart);
        string conflist = _node.Write("10-podman.conflist", Samples.PrettyConflist);
        await using var p = ChildProcess.InstallCni(
            [.. _node.Args, "--on-exit", "auto", "--daemonset", "ambient-cni", "--api-server", api.Url, "--ca-file", api.CaFile, "--token-file", api.TokenFile],
            new Dictionary<string, string> { ["POD_NAMESPACE"] = "ambient-system" });
        await p.WaitForOutputAsync("--on-exit auto: at start-up");
        Assert.True(EntryIsLast(conflist));

        api.Respond = _ => Answer(atExit);
        p.Terminate();
        var exit = await p.WaitForExitAsync(Timeout);

        Assert.Equal(0, exit.ExitCode);
        Assert.Contains(why, exit.Output, StringComparison.Ordinal);
        Assert.Equal(uninstalls, !File.Exists(_node.InstalledBinary));
        Assert.Equal(uninstalls, File.ReadAllText(conflist) == Samples.PrettyConflist);
        Assert.All(api.Requests, r =>
        {
            Assert.Equal("GET /apis/apps/v1/namespaces/ambient-system/daemonsets/ambient-cni HTTP/1.1", r.RequestLine);
            Assert.Equal("Bearer test-token-123", r.Authorization);
        });
        // One at start-up; at SIGTERM one, or three when the answer says nothing.
        Assert.Equal(atExit == 500 ? 4 : 2, api.Requests.Count);
    }
}
