using System.Text.Json.Nodes;
using Ambient.Daemonset.Tests.Support;
using Ambient.InstallCni.Install;

namespace Ambient.Daemonset.Tests.InstallCni;

/// <summary>The entry the installer writes, run through the real ambient-cni the way a runtime runs a conflist.</summary>
public sealed class InstalledEntryTests : IDisposable
{
    private readonly Node _node = new();

    public void Dispose() => _node.Dispose();

    private const string PrevResult = """{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/pod"}],"ips":[{"address":"10.88.0.5/16","interface":0}]}""";

    /// <summary>libcni hands each plugin its own entry plus the list's name and cniVersion, and the previous result.</summary>
    private string PluginStdin()
    {
        string conflist = CniInstaller.FindPrimary(_node.ConfDir)!;
        var list = JsonNode.Parse(File.ReadAllText(conflist))!.AsObject();
        var entry = list["plugins"]!.AsArray()[^1]!.DeepClone().AsObject();
        entry["name"] = (string?)list["name"];
        entry["cniVersion"] = (string?)list["cniVersion"];
        entry["prevResult"] = JsonNode.Parse(PrevResult);
        return entry.ToJsonString();
    }

    private static Task<ProcessResult> Add(string stdin, string ns) => ChildProcess.RunAsync(
        "dotnet",
        [ChildProcess.Dll("ambient-cni.dll")],
        new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD",
            ["CNI_CONTAINERID"] = "0123456789abcdef",
            ["CNI_NETNS"] = "/var/run/netns/pod",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = "/opt/cni/bin",
            ["CNI_ARGS"] = $"IgnoreUnknown=1;K8S_POD_NAMESPACE={ns};K8S_POD_NAME=web-0",
        },
        stdin);

    [Fact]
    public async Task Ambient_cni_accepts_the_installed_entry_and_reads_its_settings()
    {
        _node.Write("10-podman.conflist", Samples.PrettyConflist);
        var entry = Samples.Entry with { AgentSocket = Path.Combine(_node.Root, "cni.sock"), EnrollmentFile = Path.Combine(_node.Root, "enrollment.json") };
        Assert.Equal(InstallState.Written, new CniInstaller(_node.Options(entry)).Install().State);
        string stdin = PluginStdin();

        // A pod in an excluded namespace passes through: the whole entry parsed, the previous result handed on.
        var excluded = await Add(stdin, "ambient-system");
        Assert.True(excluded.ExitCode == 0, excluded.Output);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(PrevResult), JsonNode.Parse(excluded.Stdout)), excluded.Stdout);

        // Any other pod needs the agent at the entry's socket; with none there and no enrollment file it fails
        // closed (CNI error 11) naming that socket.
        var enrolled = await Add(stdin, "shop");
        Assert.Equal(1, enrolled.ExitCode);
        var error = JsonNode.Parse(enrolled.Stdout)!;
        Assert.Equal(11, (int)error["code"]!);
        Assert.Contains(entry.AgentSocket, error.ToJsonString(), StringComparison.Ordinal);
    }
}
