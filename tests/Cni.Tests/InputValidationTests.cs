using System.Text.Json.Nodes;
using Ambient.Cni.Tests.Support;

namespace Ambient.Cni.Tests;

/// <summary>Bad stdin, bad environment and bad config: each has its spec error code and a useful message.</summary>
public sealed class InputValidationTests : PluginTestBase
{
    [Theory]
    [InlineData("""{"cniVersion":"1.1.0",""")]
    [InlineData("not json")]
    [InlineData("")]
    [InlineData("[1,2]")]
    [InlineData("\"just a string\"")]
    [InlineData("""{"cniVersion":"1.1.0","name":"a","name":"b"}""")]
    [InlineData("""{"cniVersion":"1.1.0","prevResult":{"ips":[],"ips":[]}}""")]
    public async Task Malformed_stdin_is_decoding_failure(string stdin)
    {
        var run = await Run(Env("ADD"), stdin);
        AssertError(run, 6);
    }

    [Theory]
    [InlineData("ADD", "CNI_CONTAINERID")]
    [InlineData("ADD", "CNI_NETNS")]
    [InlineData("ADD", "CNI_IFNAME")]
    [InlineData("CHECK", "CNI_NETNS")]
    [InlineData("DEL", "CNI_CONTAINERID")]
    [InlineData("DEL", "CNI_IFNAME")]
    public async Task Missing_required_variable_is_error_4(string command, string variable)
    {
        await using var agent = StartAgent();
        var env = Env(command);
        env.Remove(variable);

        var run = await Run(env, Config(prevResult: PrevResult10()));

        var error = AssertError(run, 4);
        Assert.Contains(variable, (string?)error["msg"], StringComparison.Ordinal);
        Assert.Empty(agent.Requests);
    }

    [Theory]
    [InlineData("CNI_IFNAME", "this-name-is-too-long")]
    [InlineData("CNI_IFNAME", "eth/0")]
    [InlineData("CNI_CONTAINERID", "-starts-with-dash")]
    [InlineData("CNI_CONTAINERID", "has space")]
    public async Task Malformed_variable_is_error_4(string variable, string value)
    {
        var env = Env("ADD");
        env[variable] = value;

        var run = await Run(env, Config(prevResult: PrevResult10()));

        AssertError(run, 4);
    }

    [Theory]
    [InlineData("K8S_POD_NAMESPACE=apps;K8S_POD_NAME")]
    [InlineData("K8S_POD_NAMESPACE=apps;K8S_POD_NAME=web;FOO=bar")]
    [InlineData("=value")]
    public async Task Malformed_CNI_ARGS_is_error_4(string args)
    {
        var env = Env("ADD");
        env["CNI_ARGS"] = args;

        var run = await Run(env, Config(prevResult: PrevResult10()));

        AssertError(run, 4);
    }

    [Theory]
    [InlineData("IgnoreUnknown=1;FOO=bar;K8S_POD_NAMESPACE=apps;K8S_POD_NAME=web")]
    [InlineData("IgnoreUnknown=true;K8S_POD_NAMESPACE=apps;K8S_POD_NAME=web;K8S_POD_UID=u;EXTRA=1")]
    public async Task Unknown_CNI_ARGS_are_allowed_with_IgnoreUnknown(string args)
    {
        await using var agent = StartAgent();
        var env = Env("ADD");
        env["CNI_ARGS"] = args;

        var run = await Run(env, Config(prevResult: PrevResult10()));

        AssertSuccessResult(run);
        Assert.Equal("web", (string?)Assert.Single(agent.Requests)["pod"]!["name"]);
    }

    [Theory]
    [InlineData("agentTimeoutSeconds", "\"30\"", "agentTimeoutSeconds")]
    [InlineData("agentTimeoutSeconds", "-1", "agentTimeoutSeconds")]
    [InlineData("agentSocket", "42", "agentSocket")]
    [InlineData("agentSocket", "\"relative/cni.sock\"", "agentSocket")]
    [InlineData("excludeNamespaces", "\"kube-system\"", "excludeNamespaces")]
    [InlineData("excludeNamespaces", "[\"\"]", "excludeNamespaces")]
    [InlineData("enrollmentFile", "false", "enrollmentFile")]
    [InlineData("logLevel", "\"chatty\"", "logLevel")]
    [InlineData("prevResult", "[]", "prevResult")]
    [InlineData("cniVersion", "1.1", "cniVersion")]
    [InlineData("cni.dev/valid-attachments", "{}", "cni.dev/valid-attachments")]
    public async Task Invalid_config_values_are_error_7_naming_the_field(string key, string json, string named)
    {
        await using var agent = StartAgent();
        var config = Config(prevResult: PrevResult10());
        config[key] = JsonNode.Parse(json);

        var run = await Run(Env("ADD"), config);

        var error = AssertError(run, 7);
        Assert.Contains(named, $"{error["msg"]} {error["details"]}", StringComparison.Ordinal);
        Assert.Empty(agent.Requests);
    }

    [Fact]
    public async Task Several_config_problems_are_reported_together()
    {
        var config = Config(prevResult: PrevResult10());
        config["logLevel"] = "chatty";
        config["agentTimeoutSeconds"] = 0;

        var run = await Run(Env("ADD"), config);

        string msg = (string)AssertError(run, 7)["msg"]!;
        Assert.Contains("logLevel", msg, StringComparison.Ordinal);
        Assert.Contains("agentTimeoutSeconds", msg, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unrelated_config_keys_are_ignored()
    {
        await using var agent = StartAgent();
        var config = Config(prevResult: PrevResult10());
        config["capabilities"] = new JsonObject { ["portMappings"] = true };
        config["runtimeConfig"] = new JsonObject { ["portMappings"] = new JsonArray() };
        config["args"] = new JsonObject { ["cni"] = new JsonObject() };

        var run = await Run(Env("ADD"), config);

        AssertSuccessResult(run);
    }
}
