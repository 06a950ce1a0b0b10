using System.Text.Json.Nodes;
using Ambient.Cni.Tests.Support;

namespace Ambient.Cni.Tests;

/// <summary>DEL (idempotent, never blocked by the agent) and CHECK (same capture rule as ADD).</summary>
public sealed class DelCheckTests : PluginTestBase
{
    [Fact]
    public async Task Del_tells_the_agent_and_prints_nothing()
    {
        await using var agent = StartAgent("removed");

        var run = await Run(Env("DEL"), Config(prevResult: PrevResult10()));

        AssertSuccessNoOutput(run);
        var request = Assert.Single(agent.Requests);
        Assert.Equal("DEL", (string?)request["command"]);
        Assert.Equal(ContainerId, (string?)request["pod"]!["containerId"]);
        Assert.Equal(2, request["pod"]!["ips"]!.AsArray().Count);
    }

    [Fact]
    public async Task Del_is_idempotent()
    {
        await using var agent = StartAgent("removed");
        var env = Env("DEL");

        var first = await Run(env, Config(prevResult: PrevResult10()));
        var second = await Run(env, Config(prevResult: PrevResult10()));
        agent.Respond = _ => """{"status":"not-enrolled"}""";
        var third = await Run(env, Config());

        AssertSuccessNoOutput(first);
        AssertSuccessNoOutput(second);
        AssertSuccessNoOutput(third);
        Assert.Equal(3, agent.Requests.Count);
    }

    [Fact]
    public async Task Del_succeeds_when_the_agent_is_unreachable_and_nothing_is_known()
    {
        // No agent, no enrollment file, no netns, no prevResult: all state already gone.
        var env = Env("DEL");
        env.Remove("CNI_NETNS");

        var run = await Run(env, Config());

        AssertSuccessNoOutput(run);
        Assert.Contains("could not tell the agent", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Del_without_netns_omits_it_from_the_request()
    {
        await using var agent = StartAgent("removed");
        var env = Env("DEL");
        env.Remove("CNI_NETNS");

        var run = await Run(env, Config());

        AssertSuccessNoOutput(run);
        Assert.Null(Assert.Single(agent.Requests)["pod"]!["netns"]);
    }

    [Fact]
    public async Task Del_succeeds_on_agent_error_and_bad_prevResult()
    {
        await using var agent = StartAgent("error");
        var prev = PrevResult10();
        prev["ips"]![0]!["address"] = "garbage";

        var run = await Run(Env("DEL"), Config(prevResult: prev));

        AssertSuccessNoOutput(run);
        Assert.Single(agent.Requests);
    }

    [Fact]
    public async Task Del_in_excluded_namespace_does_not_contact_the_agent()
    {
        await using var agent = StartAgent("removed");

        var run = await Run(Env("DEL", ns: "kube-system"), Config());

        AssertSuccessNoOutput(run);
        Assert.Empty(agent.Requests);
    }

    [Theory]
    [InlineData("captured")]
    [InlineData("not-enrolled")]
    public async Task Check_succeeds_when_captured_or_not_enrolled(string status)
    {
        await using var agent = StartAgent(status);

        var run = await Run(Env("CHECK"), Config(prevResult: PrevResult10()));

        AssertSuccessNoOutput(run);
        Assert.Equal("CHECK", (string?)Assert.Single(agent.Requests)["command"]);
    }

    [Fact]
    public async Task Check_fails_when_the_agent_reports_an_error()
    {
        await using var agent = FakeAgent.Start(SocketPath);
        agent.Respond = _ => """{"status":"error","message":"redirect rules missing"}""";

        var run = await Run(Env("CHECK"), Config(prevResult: PrevResult10()));

        Assert.Equal("redirect rules missing", (string?)AssertError(run, 11)["details"]);
    }

    [Fact]
    public async Task Check_with_agent_unreachable_follows_enrollment()
    {
        WriteEnrollment("""{"version":1,"pods":["apps/web"]}""");
        var enrolled = await Run(Env("CHECK", name: "web"), Config(prevResult: PrevResult10()));
        var notEnrolled = await Run(Env("CHECK", name: "other"), Config(prevResult: PrevResult10()));

        AssertError(enrolled, 11);
        AssertSuccessNoOutput(notEnrolled);
    }

    [Fact]
    public async Task Check_requires_prevResult()
    {
        await using var agent = StartAgent();

        var run = await Run(Env("CHECK"), Config("0.4.0"));

        AssertError(run, 7);
        Assert.Empty(agent.Requests);
    }

    [Fact]
    public async Task Check_on_0_4_0_is_allowed()
    {
        await using var agent = StartAgent("captured");

        var run = await Run(Env("CHECK"), Config("0.4.0", PrevResult03("0.4.0")));

        AssertSuccessNoOutput(run);
    }
}

/// <summary>STATUS and GC, the CNI 1.1 verbs.</summary>
public sealed class StatusGcTests : PluginTestBase
{
    private static Dictionary<string, string> BareEnv(string command) => new()
    {
        ["CNI_COMMAND"] = command,
        ["CNI_PATH"] = "/opt/cni/bin",
    };

    [Fact]
    public async Task Status_ready_exits_zero()
    {
        await using var agent = StartAgent("ready");

        var run = await Run(BareEnv("STATUS"), Config());

        AssertSuccessNoOutput(run);
        var request = Assert.Single(agent.Requests);
        Assert.Equal("STATUS", (string?)request["command"]);
        Assert.Null(request["pod"]);
    }

    [Fact]
    public async Task Status_with_agent_unreachable_is_50()
    {
        var run = await Run(BareEnv("STATUS"), Config());
        AssertError(run, 50);
    }

    [Fact]
    public async Task Status_with_agent_error_is_50_with_its_message()
    {
        await using var agent = FakeAgent.Start(SocketPath);
        agent.Respond = _ => """{"status":"error","message":"no certificates yet"}""";

        var run = await Run(BareEnv("STATUS"), Config());

        Assert.Contains("no certificates yet", (string?)AssertError(run, 50)["details"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cni.dev/valid-attachments")]
    [InlineData("cni.dev/attachments")]
    public async Task Gc_forwards_valid_attachments(string key)
    {
        await using var agent = StartAgent("removed");
        var config = Config();
        config[key] = JsonNode.Parse("""[{"containerID":"aaa","ifname":"eth0"},{"containerID":"bbb","ifname":"net1"}]""");

        var run = await Run(BareEnv("GC"), config);

        AssertSuccessNoOutput(run);
        var request = Assert.Single(agent.Requests);
        Assert.Equal("GC", (string?)request["command"]);
        Assert.Equal(
            """[{"containerId":"aaa","ifname":"eth0"},{"containerId":"bbb","ifname":"net1"}]""",
            request["validAttachments"]!.ToJsonString());
    }

    [Fact]
    public async Task Gc_with_no_attachments_sends_an_empty_list()
    {
        await using var agent = StartAgent("removed");

        var run = await Run(BareEnv("GC"), Config());

        AssertSuccessNoOutput(run);
        Assert.Equal("[]", Assert.Single(agent.Requests)["validAttachments"]!.ToJsonString());
    }

    [Fact]
    public async Task Gc_succeeds_when_the_agent_is_unreachable()
    {
        var config = Config();
        config["cni.dev/valid-attachments"] = JsonNode.Parse("""[{"containerID":"aaa","ifname":"eth0"}]""");

        var run = await Run(BareEnv("GC"), config);

        AssertSuccessNoOutput(run);
    }
}
