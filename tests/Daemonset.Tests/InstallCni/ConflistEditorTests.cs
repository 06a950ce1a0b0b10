using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ambient.InstallCni.Conflist;

namespace Ambient.Daemonset.Tests.InstallCni;

/// <summary>The byte-level edits: insert as the last plugin, never twice, remove back to the original bytes.</summary>
public sealed class ConflistEditorTests
{
    private static readonly PluginEntry Entry = Samples.Entry;

    public static TheoryData<string> Conflists() => new(Samples.Conflists);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static JsonArray Plugins(byte[] file) => JsonNode.Parse(file)!["plugins"]!.AsArray();

    [Theory]
    [MemberData(nameof(Conflists))]
    public void Insert_appends_the_entry_as_last_plugin_and_keeps_every_other_byte(string original)
    {
        byte[] before = B(original);
        byte[] after = ConflistEditor.Insert(before, isList: true, Entry)!;

        var plugins = Plugins(after);
        var beforePlugins = Plugins(before);
        Assert.Equal(beforePlugins.Count + 1, plugins.Count);
        Assert.Equal("ambient-cni", (string?)plugins[^1]!["type"]);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Entry.Render(null)), plugins[^1]));

        // Everything up to the end of the last plugin, and everything after it, is the original byte for byte.
        int lastEnd = ConfigLayout.Parse(before, isList: true).Plugins[^1].End;
        byte[] prefix = before[..lastEnd];
        byte[] suffix = before[lastEnd..];
        Assert.Equal(prefix, after[..prefix.Length]);
        Assert.Equal(suffix, after[^suffix.Length..]);
    }

    [Theory]
    [MemberData(nameof(Conflists))]
    public void Insert_is_idempotent_and_remove_restores_the_original_bytes(string original)
    {
        byte[] installed = ConflistEditor.Insert(B(original), isList: true, Entry)!;

        Assert.Null(ConflistEditor.Insert(installed, isList: true, Entry));
        Assert.Equal(original, Encoding.UTF8.GetString(ConflistEditor.Remove(installed)!));
        Assert.Null(ConflistEditor.Remove(B(original)));
    }

    [Fact]
    public void The_entry_lines_up_with_the_plugins_before_it()
    {
        string after = Encoding.UTF8.GetString(ConflistEditor.Insert(B(Samples.PrettyConflist), isList: true, Entry)!);

        Assert.Contains("\n    },\n    {\n      \"type\": \"ambient-cni\",\n      \"agentSocket\": \"/var/run/ambient/cni.sock\",", after, StringComparison.Ordinal);
        string compact = Encoding.UTF8.GetString(ConflistEditor.Insert(B(Samples.CompactConflist), isList: true, Entry)!);
        Assert.DoesNotContain("\n", compact, StringComparison.Ordinal);
    }

    [Fact]
    public void A_conf_becomes_a_conflist_and_unwraps_back_to_the_same_bytes()
    {
        byte[] converted = ConflistEditor.Insert(B(Samples.BridgeConf), isList: false, Entry)!;

        var root = JsonNode.Parse(converted)!.AsObject();
        Assert.Equal("0.3.1", (string?)root["cniVersion"]);
        Assert.Equal("mynet", (string?)root["name"]);
        var plugins = root["plugins"]!.AsArray();
        Assert.Equal(2, plugins.Count);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Samples.BridgeConf), plugins[0]), "the .conf's object is the first plugin, whole");
        Assert.Equal("ambient-cni", (string?)plugins[1]!["type"]);
        Assert.Null(ConflistEditor.Insert(converted, isList: true, Entry));

        byte[] removed = ConflistEditor.Remove(converted)!;
        Assert.Equal(Samples.BridgeConf, Encoding.UTF8.GetString(ConflistEditor.Unwrap(removed)!));
    }

    [Fact]
    public void Unwrap_leaves_a_conflist_the_installer_did_not_convert()
    {
        Assert.Null(ConflistEditor.Unwrap(B(Samples.PrettyConflist)));
        Assert.Null(ConflistEditor.Unwrap(B(Samples.TabsConflist)));
    }

    [Fact]
    public void Duplicates_and_an_entry_that_is_not_last_become_one_entry_at_the_end()
    {
        string twice = """
            {"cniVersion":"1.0.0","name":"n","plugins":[
              {"type":"ambient-cni","agentSocket":"/old.sock"},
              {"type":"bridge"},
              {"type":"ambient-cni"},
              {"type":"portmap"}
            ]}
            """;

        byte[] after = ConflistEditor.Insert(B(twice), isList: true, Entry)!;

        string[] types = [.. Plugins(after).Select(p => (string)p!["type"]!)];
        Assert.Equal(["bridge", "portmap", "ambient-cni"], types);
        Assert.Null(ConflistEditor.Insert(after, isList: true, Entry));
    }

    [Fact]
    public void Changed_settings_replace_the_entry_in_place()
    {
        byte[] installed = ConflistEditor.Insert(B(Samples.PrettyConflist), isList: true, Entry)!;
        var changed = Entry with { AgentTimeoutSeconds = 5, LogFile = "/var/log/ambient-cni.log" };

        byte[] after = ConflistEditor.Insert(installed, isList: true, changed)!;

        var last = Plugins(after)[^1]!;
        Assert.Equal(5, (double)last["agentTimeoutSeconds"]!);
        Assert.Equal("/var/log/ambient-cni.log", (string?)last["logFile"]);
        Assert.Equal(Plugins(installed).Count, Plugins(after).Count);
        Assert.Equal(Samples.PrettyConflist, Encoding.UTF8.GetString(ConflistEditor.Remove(after)!));
    }

    [Theory]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": [", true, "is not valid JSON (line 1")]
    [InlineData("{\n  \"cniVersion\": \"1.0.0\",\n  \"name\": \"x\",\n  \"name\": \"y\",\n  \"plugins\": [{\"type\":\"bridge\"}]\n}", true, "key that appears twice")]
    [InlineData("[1, 2]", true, "is a JSON array, not an object")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": {\"type\": \"bridge\"}}", true, "\"plugins\" of type object")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": [\"bridge\"]}", true, "plugins[0] of type string")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": [{\"ipam\": {}}]}", true, "has no \"plugins[0].type\"")]
    [InlineData("{\"name\": \"x\", \"plugins\": [{\"type\": \"bridge\"}]}", true, "has no \"cniVersion\"")]
    [InlineData("{\"cniVersion\": 1, \"name\": \"x\", \"plugins\": [{\"type\": \"bridge\"}]}", true, "\"cniVersion\" of type number")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"plugins\": [{\"type\": \"bridge\"}]}", true, "has no \"name\"")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": []}", true, "no primary CNI plugin")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": [{\"type\": \"ambient-cni\"}]}", true, "no primary CNI plugin")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"type\": \"bridge\"}", true, "has no \"plugins\" list, which a .conflist must have")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": [{\"type\": \"bridge\"}]}", false, "rename it to .conflist")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"type\": \"ambient-cni\"}", false, "no primary CNI plugin")]
    [InlineData("{\"cniVersion\": \"1.0.0\", \"name\": \"x\"} // comment", false, "is not valid JSON")]
    public void Malformed_configs_are_refused_with_the_reason(string file, bool isList, string expected)
    {
        var ex = Assert.Throws<ConfigFormatException>(() => ConflistEditor.Insert(B(file), isList, Entry));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_rendered_entry_is_the_plugins_configuration_keys()
    {
        var entry = JsonNode.Parse(Entry.Render(null))!.AsObject();

        Assert.Equal(
            ["type", "agentSocket", "enrollmentFile", "excludeNamespaces", "agentTimeoutSeconds", "logLevel"],
            entry.Select(kv => kv.Key).ToArray());
        Assert.Equal(JsonValueKind.Array, entry["excludeNamespaces"]!.GetValueKind());
    }
}
