using System.Text.Json.Nodes;
using Ambient.Cni.Tests.Support;

namespace Ambient.Cni.Tests;

/// <summary>VERSION, human invocation and version negotiation (SPEC.md, "VERSION" and "Errors").</summary>
public sealed class VersionAndInvocationTests : PluginTestBase
{
    [Fact]
    public async Task Version_lists_supported_versions_without_needing_config()
    {
        var run = await PluginProcess.RunAsync(new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" }, """{"cniVersion":"0.4.0"}""");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("""{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}""", run.Stdout.Trim());
    }

    [Fact]
    public async Task Version_ignores_empty_stdin()
    {
        var run = await PluginProcess.RunAsync(new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" }, "");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("1.1.0", (string?)JsonNode.Parse(run.Stdout)!["cniVersion"]);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_prints_usage_and_exits_zero(string flag)
    {
        var run = await PluginProcess.RunAsync(new Dictionary<string, string>(), null, [flag]);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("CNI_COMMAND", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("agentSocket", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_CNI_COMMAND_is_error_4_pointing_at_help()
    {
        var run = await PluginProcess.RunAsync(new Dictionary<string, string>(), null);

        var error = AssertError(run, 4);
        Assert.Contains("CNI_COMMAND", (string?)error["msg"], StringComparison.Ordinal);
        Assert.Contains("--help", (string?)error["details"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_command_is_error_4()
    {
        var run = await Run(Env("FROB"), Config());
        AssertError(run, 4);
    }

    [Theory]
    [InlineData("0.1.0")]
    [InlineData("0.2.0")]
    [InlineData("1.2.0")]
    [InlineData("banana")]
    public async Task Unsupported_config_version_is_error_1(string version)
    {
        await using var agent = StartAgent();
        var run = await Run(Env("ADD"), Config(version, PrevResult10(version)));

        var error = AssertError(run, 1);
        Assert.Contains(version, (string?)error["msg"], StringComparison.Ordinal);
        Assert.Empty(agent.Requests);
    }

    [Fact]
    public async Task Missing_cniVersion_is_invalid_config()
    {
        var config = Config(prevResult: PrevResult10());
        config.Remove("cniVersion");
        var run = await Run(Env("ADD"), config);
        AssertError(run, 7);
    }

    [Theory]
    [InlineData("CHECK", "0.3.0")]
    [InlineData("CHECK", "0.3.1")]
    [InlineData("GC", "1.0.0")]
    [InlineData("STATUS", "1.0.0")]
    [InlineData("STATUS", "0.4.0")]
    public async Task Command_newer_than_config_version_is_error_1(string command, string version)
    {
        await using var agent = StartAgent("ready");
        var run = await Run(Env(command), Config(version, PrevResult03(version)));

        var error = AssertError(run, 1);
        Assert.Equal($"config version does not allow {command}", (string?)error["msg"]);
        Assert.Equal(version, (string?)error["cniVersion"]);
        Assert.Empty(agent.Requests);
    }
}
