using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Ambient.Cni.Tests.Support;

namespace Ambient.Cni.Tests.Chaining;

/// <summary>
/// ambient-cni chained after the real bridge + host-local plugins in a real network namespace, driven by
/// <see cref="ConflistRunner"/> the way a runtime drives a conflist. Each test owns a uniquely named netns,
/// bridge and 10.199.x.0/24 subnet, and removes them in finally whatever happened.
/// </summary>
public sealed class BridgeChainTests : IDisposable
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);

    private readonly TempDir _dir = new();
    private readonly string _id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
    private readonly ConflistRunner _runner = new(Resolve, NetnsFactAttribute.PluginDir);

    private string NetnsName => $"ambt-{_id}";

    private string BridgeName => $"ambbr{_id}";

    private string SocketPath => _dir.File("cni.sock");

    private Attachment Pod(string name = "web") => new(
        $"ctr{_id}",
        $"/var/run/netns/{NetnsName}",
        "eth0",
        $"IgnoreUnknown=1;K8S_POD_NAMESPACE=apps;K8S_POD_NAME={name};K8S_POD_UID=uid-{_id}");

    private static (string, string[]) Resolve(string type) =>
        type == "ambient-cni" ? PluginProcess.Command() : (Path.Combine(NetnsFactAttribute.PluginDir, type), []);

    private JsonObject Conflist() => new()
    {
        // Debian's bridge plugin speaks up to 1.0.0, so the list uses that; ambient-cni supports it too.
        ["cniVersion"] = "1.0.0",
        ["name"] = $"ambient-test-{_id}",
        ["plugins"] = new JsonArray(
            new JsonObject
            {
                ["type"] = "bridge",
                ["bridge"] = BridgeName,
                // No gateway and no masquerade: the test must not touch the host's forwarding or NAT.
                ["isGateway"] = false,
                ["ipMasq"] = false,
                ["ipam"] = new JsonObject
                {
                    ["type"] = "host-local",
                    ["subnet"] = $"10.199.{Convert.ToInt32(_id[..2], 16)}.0/24",
                    ["dataDir"] = _dir.File("ipam"),
                },
            },
            new JsonObject
            {
                ["type"] = "ambient-cni",
                ["agentSocket"] = SocketPath,
                ["enrollmentFile"] = _dir.File("enrollment.json"),
                ["agentTimeoutSeconds"] = 5,
                ["logLevel"] = "debug",
            }),
    };

    [NetnsFact]
    public async Task Add_check_del_through_bridge_and_ambient()
    {
        await using var agent = FakeAgent.Answering(SocketPath, "captured");
        var conflist = Conflist();
        var pod = Pod();
        try
        {
            await IpAsync("netns", "add", NetnsName);

            var results = await _runner.AddAsync(conflist, pod);

            var (bridgeResult, finalResult) = (results[0], results[1]);
            Assert.True(JsonNode.DeepEquals(bridgeResult, finalResult), $"bridge: {bridgeResult.ToJsonString()}\nfinal: {finalResult.ToJsonString()}");
            string podIp = ((string)bridgeResult["ips"]![0]!["address"]!).Split('/')[0];
            Assert.StartsWith("10.199.", podIp, StringComparison.Ordinal);

            var add = Assert.Single(agent.Requests);
            Assert.Equal("ADD", (string?)add["command"]);
            Assert.Equal([podIp], add["pod"]!["ips"]!.AsArray().Select(n => (string)n!).ToArray());
            Assert.Equal(pod.Netns, (string?)add["pod"]!["netns"]);
            Assert.Contains(podIp, await IpAsync("-n", NetnsName, "-4", "addr", "show", "eth0"), StringComparison.Ordinal);

            await _runner.CheckAsync(conflist, pod, finalResult);
            Assert.Equal("CHECK", (string?)agent.Requests.Last()["command"]);

            agent.Respond = _ => """{"status":"removed"}""";
            await _runner.DelAsync(conflist, pod, finalResult);
            Assert.Equal("DEL", (string?)agent.Requests.Last()["command"]);
            Assert.False(await LinkExistsAsync("-n", NetnsName, "link", "show", "eth0"), "eth0 still in the pod netns after DEL");
            Assert.False(File.Exists(Path.Combine(_dir.File("ipam"), (string)conflist["name"]!, podIp)), "host-local still holds the IP after DEL");

            // A second DEL (kubelet retries) must succeed with everything already gone.
            await _runner.DelAsync(conflist, pod, finalResult);
        }
        finally
        {
            await CleanupAsync();
        }
    }

    [NetnsFact]
    public async Task Failed_capture_fails_the_chain_and_the_runtime_del_cleans_up()
    {
        await using var agent = FakeAgent.Start(SocketPath);
        agent.Respond = r => (string?)r["command"] == "ADD"
            ? """{"status":"error","message":"cannot enter netns"}"""
            : """{"status":"removed"}""";
        var conflist = Conflist();
        try
        {
            await IpAsync("netns", "add", NetnsName);

            var failure = await Assert.ThrowsAsync<ChainFailedException>(() => _runner.AddAsync(conflist, Pod()));

            Assert.Equal("ambient-cni", failure.Plugin);
            var error = JsonNode.Parse(failure.Run.Stdout)!;
            Assert.Equal(11, (int)error["code"]!);
            Assert.Equal("cannot enter netns", (string?)error["details"]);
            Assert.Equal(["ADD", "DEL"], agent.Requests.Select(r => (string)r["command"]!).ToArray());
            Assert.False(await LinkExistsAsync("-n", NetnsName, "link", "show", "eth0"), "the rollback DEL left eth0 behind");
        }
        finally
        {
            await CleanupAsync();
        }
    }

    private async Task CleanupAsync()
    {
        // Each step on its own: a failure in one must not leave the others behind.
        await TryIpAsync("netns", "del", NetnsName);
        await TryIpAsync("link", "del", BridgeName);
    }

    private static async Task<string> IpAsync(params string[] args)
    {
        var run = await PluginProcess.RunExecutableAsync("ip", args, new Dictionary<string, string>(), null, ToolTimeout);
        Assert.True(run.ExitCode == 0, $"ip {string.Join(' ', args)}: {run.Stderr}");
        return run.Stdout;
    }

    private static async Task<bool> LinkExistsAsync(params string[] args) =>
        (await PluginProcess.RunExecutableAsync("ip", args, new Dictionary<string, string>(), null, ToolTimeout)).ExitCode == 0;

    private static async Task TryIpAsync(params string[] args)
    {
        try
        {
            await PluginProcess.RunExecutableAsync("ip", args, new Dictionary<string, string>(), null, ToolTimeout);
        }
        catch (Exception)
        {
            // Cleanup is best effort; the names are unique per test.
        }
    }

    public void Dispose()
    {
        _dir.Dispose();
    }
}
