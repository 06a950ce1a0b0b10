using System.Text.Json.Nodes;
using Ambient.InstallCni.Install;

namespace Ambient.Daemonset.Tests.InstallCni;

/// <summary>One install or uninstall pass against a node's CNI directories.</summary>
public sealed class CniInstallerTests : IDisposable
{
    private readonly Node _node = new();

    public void Dispose() => _node.Dispose();

    private CniInstaller Installer() => new(_node.Options());

    [Fact]
    public void The_primary_config_is_the_first_cni_file_in_byte_order()
    {
        _node.Write("20-b.conflist", Samples.CompactConflist);
        _node.Write("10-a.json", Samples.BridgeConf);
        _node.Write("05-readme.txt", "not a config");
        _node.Write("00-Z.conflist.bak", Samples.CompactConflist);
        _node.Write(".01-hidden.tmp", "{}");
        _node.Write("10-A.conf", Samples.BridgeConf);

        Assert.Equal(_node.Conf("10-A.conf"), CniInstaller.FindPrimary(_node.ConfDir));
    }

    [Fact]
    public void Install_copies_the_binary_and_appends_the_entry_then_changes_nothing()
    {
        string conflist = _node.Write("10-podman.conflist", Samples.PrettyConflist);
        File.SetUnixFileMode(conflist, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var first = Installer().Install();

        Assert.Equal(InstallState.Written, first.State);
        Assert.True(first.BinaryCopied);
        Assert.Equal(File.ReadAllBytes(_node.Source), File.ReadAllBytes(_node.InstalledBinary));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
            | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute, File.GetUnixFileMode(_node.InstalledBinary));
        var plugins = JsonNode.Parse(File.ReadAllText(conflist))!["plugins"]!.AsArray();
        Assert.Equal("ambient-cni", (string?)plugins[^1]!["type"]);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(conflist));

        string installed = File.ReadAllText(conflist);
        var writeTime = File.GetLastWriteTimeUtc(conflist);
        var second = Installer().Install();

        Assert.Equal(InstallState.Unchanged, second.State);
        Assert.False(second.BinaryCopied);
        Assert.Equal(installed, File.ReadAllText(conflist));
        Assert.Equal(writeTime, File.GetLastWriteTimeUtc(conflist));
        Assert.Equal(["10-podman.conflist"], Directory.GetFiles(_node.ConfDir).Select(Path.GetFileName));
        Assert.Equal(["ambient-cni"], Directory.GetFiles(_node.BinDir).Select(Path.GetFileName));
        Assert.True(Installer().Check().Installed);
    }

    [Fact]
    public void A_different_binary_is_replaced()
    {
        _node.Write("10-podman.conflist", Samples.PrettyConflist);
        File.WriteAllText(_node.InstalledBinary, "an older ambient-cni");

        var result = Installer().Install();

        Assert.True(result.BinaryCopied);
        Assert.Equal(File.ReadAllBytes(_node.Source), File.ReadAllBytes(_node.InstalledBinary));
    }

    [Fact]
    public void A_conf_becomes_a_conflist_and_uninstall_gives_the_conf_back()
    {
        string conf = _node.Write("10-bridge.conf", Samples.BridgeConf);
        File.SetUnixFileMode(conf, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);

        var result = Installer().Install();

        string conflist = _node.Conf("10-bridge.conflist");
        Assert.Equal(InstallState.Written, result.State);
        Assert.Equal(conflist, result.ConfigFile);
        Assert.False(File.Exists(conf));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(conflist));
        Assert.Equal(conflist, CniInstaller.FindPrimary(_node.ConfDir));
        Assert.Equal(InstallState.Unchanged, Installer().Install().State);

        var removed = Installer().Uninstall();

        Assert.Empty(removed.Problems);
        Assert.Equal(2, removed.Changes.Length);
        Assert.Equal(Samples.BridgeConf, File.ReadAllText(conf));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(conf));
        Assert.False(File.Exists(conflist));
        Assert.False(File.Exists(_node.InstalledBinary));
    }

    [Fact]
    public void A_conf_rewritten_by_its_cni_after_the_conversion_is_converted_again()
    {
        _node.Write("10-bridge.conf", Samples.BridgeConf);
        Installer().Install();
        string rewritten = Samples.BridgeConf.Replace("10.22.0.0/16", "10.23.0.0/16", StringComparison.Ordinal);
        _node.Write("10-bridge.conf", rewritten);

        var result = Installer().Install();

        Assert.Equal(InstallState.Written, result.State);
        Assert.False(File.Exists(_node.Conf("10-bridge.conf")));
        Assert.Contains("10.23.0.0/16", File.ReadAllText(_node.Conf("10-bridge.conflist")), StringComparison.Ordinal);
        Installer().Uninstall();
        Assert.Equal(rewritten, File.ReadAllText(_node.Conf("10-bridge.conf")));
    }

    [Fact]
    public void A_conf_whose_conflist_name_belongs_to_another_config_is_refused()
    {
        _node.Write("10-x.conf", Samples.BridgeConf);
        _node.Write("10-x.conflist", Samples.CompactConflist);
        var before = _node.Snapshot();

        var result = Installer().Install();

        Assert.Equal(InstallState.Refused, result.State);
        Assert.Contains("is another config; left both untouched", result.Detail, StringComparison.Ordinal);
        Assert.Equal(before, _node.Snapshot());
    }

    [Theory]
    [InlineData("10-broken.conflist", "{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": [{\"type\": \"bridge\"},]}", "is not valid JSON (line 1, byte 69)")]
    [InlineData("10-broken.conflist", "{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": []}", "no primary CNI plugin")]
    [InlineData("10-broken.conf", "", "is not valid JSON")]
    public void A_malformed_primary_config_is_refused_and_left_untouched(string name, string content, string reason)
    {
        _node.Write(name, content);
        _node.Write("20-next.conflist", Samples.CompactConflist);
        var before = _node.Snapshot();

        var result = Installer().Install();

        Assert.Equal(InstallState.Refused, result.State);
        Assert.StartsWith(_node.Conf(name), result.Detail, StringComparison.Ordinal);
        Assert.Contains(reason, result.Detail, StringComparison.Ordinal);
        Assert.Contains("left it untouched", result.Detail, StringComparison.Ordinal);
        Assert.Equal(before, _node.Snapshot());
        var check = Installer().Check();
        Assert.False(check.Installed);
    }

    [Fact]
    public void No_config_yet_means_waiting_with_the_binary_already_in_place()
    {
        var result = Installer().Install();

        Assert.Equal(InstallState.NoConfig, result.State);
        Assert.Contains("waiting for the primary CNI", result.Detail, StringComparison.Ordinal);
        Assert.True(File.Exists(_node.InstalledBinary));
        Assert.Empty(Directory.GetFiles(_node.ConfDir));
    }

    [Fact]
    public void Uninstall_takes_the_entry_out_of_every_config_and_leaves_the_rest_alone()
    {
        string primary = _node.Write("10-podman.conflist", Samples.PrettyConflist);
        Installer().Install();
        // A config that was primary once (then another sorted before it) still carries an entry.
        string older = _node.Write("20-older.conflist", File.ReadAllText(primary).Replace("\"podman\"", "\"older\"", StringComparison.Ordinal));
        string other = _node.Write("30-other.conflist", Samples.TabsConflist);
        string broken = _node.Write("40-broken.conflist", "{ not json");

        var result = Installer().Uninstall();

        Assert.Equal(Samples.PrettyConflist, File.ReadAllText(primary));
        Assert.Equal(Samples.PrettyConflist.Replace("\"podman\"", "\"older\"", StringComparison.Ordinal), File.ReadAllText(older));
        Assert.Equal(Samples.TabsConflist, File.ReadAllText(other));
        Assert.Equal("{ not json", File.ReadAllText(broken));
        Assert.False(File.Exists(_node.InstalledBinary));
        Assert.Equal(3, result.Changes.Length);
        Assert.Contains(result.Problems, p => p.StartsWith(broken, StringComparison.Ordinal) && p.Contains("not valid JSON", StringComparison.Ordinal));
    }

    [Fact]
    public void Check_reports_what_is_missing()
    {
        _node.Write("10-podman.conflist", Samples.PrettyConflist);
        Assert.Contains("is missing", Installer().Check().Detail, StringComparison.Ordinal);

        Installer().Install();
        Assert.True(Installer().Check().Installed);

        var changed = new CniInstaller(_node.Options(Samples.Entry with { AgentTimeoutSeconds = 3 }));
        Assert.Contains("does not end with the ambient-cni entry as configured", changed.Check().Detail, StringComparison.Ordinal);
        File.WriteAllText(_node.InstalledBinary, "tampered");
        Assert.Contains("differs from", Installer().Check().Detail, StringComparison.Ordinal);
    }
}
