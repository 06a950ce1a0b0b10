using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Ambient.Cni.Tests.Support;

namespace Ambient.Cni.Tests;

/// <summary>ADD: capture through the agent, prevResult passthrough, and every fail-closed path.</summary>
public sealed class AddTests : PluginTestBase
{
    [Fact]
    public async Task Captured_pod_passes_prevResult_through_byte_for_byte()
    {
        await using var agent = StartAgent("captured");
        string prevText = PrevResult10().ToJsonString();
        string stdin = $$"""{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"ambient-cni","agentSocket":"{{SocketPath}}","enrollmentFile":"{{EnrollmentPath}}","prevResult":{{prevText}}}""";

        var run = await Run(Env("ADD"), stdin);

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        // Same cniVersion in config and prevResult, compact ASCII input: the output must be the very same bytes.
        Assert.Equal(prevText, run.Stdout.TrimEnd('\n'));
    }

    [Fact]
    public async Task Agent_receives_pod_identity_and_container_ips_only()
    {
        await using var agent = StartAgent("captured");

        var run = await Run(Env("ADD", ns: "shop", name: "cart-7d9"), Config(prevResult: PrevResult10()));

        AssertSuccessResult(run);
        var request = Assert.Single(agent.Requests);
        Assert.Equal(1, (int)request["version"]!);
        Assert.Equal("ADD", (string?)request["command"]);
        var pod = request["pod"]!.AsObject();
        Assert.Equal("uid-1", (string?)pod["uid"]);
        Assert.Equal("cart-7d9", (string?)pod["name"]);
        Assert.Equal("shop", (string?)pod["namespace"]);
        Assert.Equal(ContainerId, (string?)pod["containerId"]);
        Assert.Equal(Netns, (string?)pod["netns"]);
        Assert.Equal("eth0", (string?)pod["ifname"]);
        // 10.1.0.1 sits on the host bridge (interface 0 has no sandbox): not the pod's address.
        Assert.Equal(["10.1.0.5", "fd00::5"], pod["ips"]!.AsArray().Select(n => (string)n!).ToArray());
        Assert.Null(request["validAttachments"]);
    }

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    public async Task Old_result_formats_pass_through_with_config_version(string version)
    {
        await using var agent = StartAgent("captured");
        var prev = PrevResult03(version);

        var run = await Run(Env("ADD"), Config(version, prev));

        var result = AssertSuccessResult(run);
        Assert.True(JsonNode.DeepEquals(prev, result), run.Stdout);
        Assert.Equal("4", (string?)result["ips"]![0]!["version"]);
        Assert.Equal(["10.1.0.5"], Assert.Single(agent.Requests)["pod"]!["ips"]!.AsArray().Select(n => (string)n!).ToArray());
    }

    [Theory]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public async Task Result_carries_the_config_cniVersion(string version)
    {
        await using var agent = StartAgent("captured");
        // A runtime converts prevResult to the config's version; an older stamp must not leak out.
        var prev = PrevResult10("1.0.0");

        var run = await Run(Env("ADD"), Config(version, prev));

        var result = AssertSuccessResult(run);
        Assert.Equal(version, (string?)result["cniVersion"]);
        prev["cniVersion"] = version;
        Assert.True(JsonNode.DeepEquals(prev, result));
    }

    [Fact]
    public async Task Non_ascii_and_unknown_fields_survive()
    {
        await using var agent = StartAgent("captured");
        var prev = PrevResult10();
        prev["x-note"] = "ünïcødé <&> 'quoted' \"double\"";
        prev["x-big"] = JsonNode.Parse("12345678901234567890");

        var run = await Run(Env("ADD"), Config(prevResult: prev));

        var result = AssertSuccessResult(run);
        Assert.True(JsonNode.DeepEquals(prev, result), run.Stdout);
        Assert.Contains("12345678901234567890", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("ünïcødé", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Not_enrolled_pod_passes_through()
    {
        await using var agent = StartAgent("not-enrolled");
        var prev = PrevResult10();

        var run = await Run(Env("ADD"), Config(prevResult: prev));

        Assert.True(JsonNode.DeepEquals(prev, AssertSuccessResult(run)));
        Assert.Single(agent.Requests);
    }

    [Fact]
    public async Task Excluded_namespace_never_contacts_the_agent()
    {
        await using var agent = StartAgent("error");
        var prev = PrevResult10();

        var defaultExcluded = await Run(Env("ADD", ns: "kube-system"), Config(prevResult: prev));
        var config = Config(prevResult: prev);
        config["excludeNamespaces"] = new JsonArray("infra", "monitoring");
        var customExcluded = await Run(Env("ADD", ns: "monitoring"), config);

        Assert.True(JsonNode.DeepEquals(prev, AssertSuccessResult(defaultExcluded)));
        Assert.True(JsonNode.DeepEquals(prev, AssertSuccessResult(customExcluded)));
        Assert.Empty(agent.Requests);
    }

    [Fact]
    public async Task Without_kubernetes_args_the_pod_passes_through()
    {
        await using var agent = StartAgent("error");
        var env = Env("ADD");
        env.Remove("CNI_ARGS");

        var run = await Run(env, Config(prevResult: PrevResult10()));

        AssertSuccessResult(run);
        Assert.Empty(agent.Requests);
    }

    [Fact]
    public async Task Agent_error_fails_with_code_11_and_its_message()
    {
        await using var agent = FakeAgent.Start(SocketPath);
        agent.Respond = _ => """{"status":"error","message":"iptables-restore failed: exit 4"}""";

        var run = await Run(Env("ADD"), Config(prevResult: PrevResult10()));

        var error = AssertError(run, 11);
        Assert.Equal("iptables-restore failed: exit 4", (string?)error["details"]);
        Assert.Contains("apps/web", (string?)error["msg"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"status":"bogus"}""")]
    [InlineData("""{"status":"removed"}""")]
    [InlineData("""{"message":"no status"}""")]
    [InlineData("not json at all")]
    public async Task Invalid_agent_response_fails_closed(string response)
    {
        await using var agent = FakeAgent.Start(SocketPath);
        agent.Respond = _ => response;
        WriteEnrollment("""{"version":1,"namespaces":[],"pods":[],"all":false}""");

        var run = await Run(Env("ADD"), Config(prevResult: PrevResult10()));

        AssertError(run, 11);
    }

    [Theory]
    [InlineData("""{"version":1,"namespaces":["apps"],"pods":[],"all":false}""")]
    [InlineData("""{"version":1,"namespaces":["other"],"pods":["apps/web"],"all":false}""")]
    [InlineData("""{"version":1,"all":true}""")]
    public async Task Agent_unreachable_and_pod_enrolled_fails_with_11(string enrollment)
    {
        WriteEnrollment(enrollment);

        var run = await Run(Env("ADD"), Config(prevResult: PrevResult10()));

        var error = AssertError(run, 11);
        Assert.Equal($"ambient agent unreachable at {SocketPath}; pod is enrolled, refusing to start it uncaptured", (string?)error["msg"]);
    }

    [Fact]
    public async Task Agent_unreachable_and_pod_not_enrolled_passes_through()
    {
        WriteEnrollment("""{"version":1,"namespaces":["other"],"pods":["apps/api","other/web"],"all":false}""");
        var prev = PrevResult10();

        var run = await Run(Env("ADD"), Config(prevResult: prev));

        Assert.True(JsonNode.DeepEquals(prev, AssertSuccessResult(run)));
        Assert.Contains("passing through", run.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("{not json")]
    [InlineData("""{"version":2,"all":false}""")]
    [InlineData("""{"namespaces":"apps"}""")]
    public async Task Agent_unreachable_and_enrollment_unknown_fails_closed(string? enrollment)
    {
        if (enrollment is not null)
        {
            WriteEnrollment(enrollment);
        }

        var run = await Run(Env("ADD"), Config(prevResult: PrevResult10()));

        var error = AssertError(run, 11);
        Assert.Contains("enrollment", (string?)error["msg"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refused_connection_counts_as_unreachable()
    {
        // A bound socket that never listens: connect gets ECONNREFUSED, as from a hung or crashed agent.
        // It stays open for the test because .NET unlinks the file when a bound socket is disposed.
        using var stale = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        stale.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(SocketPath));

        WriteEnrollment("""{"version":1,"namespaces":["apps"]}""");

        var run = await Run(Env("ADD"), Config(prevResult: PrevResult10()));

        var error = AssertError(run, 11);
        Assert.Contains("refused", (string?)error["details"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Agent_hanging_up_without_answer_counts_as_unreachable()
    {
        await using var agent = FakeAgent.Start(SocketPath);
        agent.Respond = _ => null;
        WriteEnrollment("""{"version":1,"namespaces":[]}""");

        var run = await Run(Env("ADD"), Config(prevResult: PrevResult10()));

        AssertSuccessResult(run);
        Assert.Single(agent.Requests);
    }

    [Fact]
    public async Task Slow_agent_times_out_then_enrollment_decides()
    {
        await using var agent = StartAgent("captured");
        agent.Delay = TimeSpan.FromSeconds(20);
        WriteEnrollment("""{"version":1,"namespaces":["apps"]}""");
        var watch = Stopwatch.StartNew();

        var run = await Run(Env("ADD"), Config(prevResult: PrevResult10(), timeoutSeconds: 0.5));

        var error = AssertError(run, 11);
        Assert.Contains("within 0.5s", (string?)error["details"], StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task Missing_prevResult_is_invalid_config()
    {
        await using var agent = StartAgent();

        var run = await Run(Env("ADD"), Config());

        var error = AssertError(run, 7);
        Assert.Contains("chained", (string?)error["msg"], StringComparison.Ordinal);
        Assert.Empty(agent.Requests);
    }

    [Fact]
    public async Task Malformed_prevResult_address_is_invalid_config()
    {
        await using var agent = StartAgent();
        var prev = PrevResult10();
        prev["ips"]![0]!["address"] = "10.1.0.999/24";

        var run = await Run(Env("ADD"), Config(prevResult: prev));

        AssertError(run, 7);
        Assert.Empty(agent.Requests);
    }

    [Fact]
    public async Task Log_file_receives_the_log_lines()
    {
        await using var agent = StartAgent("captured");
        var config = Config(prevResult: PrevResult10());
        config["logFile"] = Dir.File("plugin.log");
        config["logLevel"] = "info";

        var run = await Run(Env("ADD"), config);

        AssertSuccessResult(run);
        string log = await File.ReadAllTextAsync(Dir.File("plugin.log"), Encoding.UTF8).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("ADD apps/web: captured", log, StringComparison.Ordinal);
        Assert.DoesNotContain(" debug ", log, StringComparison.Ordinal);
    }
}
