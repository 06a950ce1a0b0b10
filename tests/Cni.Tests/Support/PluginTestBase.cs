using System.Text.Json.Nodes;

namespace Ambient.Cni.Tests.Support;

/// <summary>Per-test scratch space: agent socket and enrollment file paths, removed after the test.</summary>
public abstract class PluginTestBase : IDisposable
{
    public const string ContainerId = "c0ffee01";
    public const string Netns = "/var/run/netns/ambient-test";

    internal PluginTestBase()
    {
        Dir = new TempDir();
    }

    internal TempDir Dir { get; }

    internal string SocketPath => Dir.File("cni.sock");

    internal string EnrollmentPath => Dir.File("enrollment.json");

    internal FakeAgent StartAgent(string status = "captured") => FakeAgent.Answering(SocketPath, status);

    internal void WriteEnrollment(string json) => File.WriteAllText(EnrollmentPath, json);

    /// <summary>A 1.x result as the bridge plugin makes it: host bridge, host veth, container eth0.</summary>
    internal static JsonObject PrevResult10(string version = "1.1.0") => (JsonObject)JsonNode.Parse($$$"""
        {"cniVersion":"{{{version}}}","interfaces":[{"name":"cni0","mac":"aa:bb:cc:dd:ee:00"},{"name":"veth1234","mac":"aa:bb:cc:dd:ee:01"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:02","sandbox":"{{{Netns}}}","mtu":1500}],"ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1","interface":2},{"address":"fd00::5/64","interface":2},{"address":"10.1.0.1/24","interface":0}],"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}],"dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]},"x-vendor":{"keep":[1,2.50,true,null]}}
        """)!;

    /// <summary>A 0.3.x/0.4.0 result: ips carry "version".</summary>
    internal static JsonObject PrevResult03(string version) => (JsonObject)JsonNode.Parse($$$"""
        {"cniVersion":"{{{version}}}","interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:02","sandbox":"{{{Netns}}}"}],"ips":[{"version":"4","address":"10.1.0.5/24","gateway":"10.1.0.1","interface":0}],"dns":{}}
        """)!;

    internal JsonObject Config(string version = "1.1.0", JsonObject? prevResult = null, double timeoutSeconds = 5)
    {
        var config = new JsonObject
        {
            ["cniVersion"] = version,
            ["name"] = "k8s-pod-network",
            ["type"] = "ambient-cni",
            ["agentSocket"] = SocketPath,
            ["enrollmentFile"] = EnrollmentPath,
            ["agentTimeoutSeconds"] = timeoutSeconds,
            ["logLevel"] = "debug",
        };
        if (prevResult is not null)
        {
            config["prevResult"] = prevResult.DeepClone();
        }

        return config;
    }

    internal static Dictionary<string, string> Env(string command, string ns = "apps", string name = "web")
    {
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = ContainerId,
            ["CNI_NETNS"] = Netns,
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = "/opt/cni/bin",
            ["CNI_ARGS"] = $"IgnoreUnknown=1;K8S_POD_NAMESPACE={ns};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID={ContainerId};K8S_POD_UID=uid-1",
        };
        return env;
    }

    internal static Task<PluginRun> Run(Dictionary<string, string> env, JsonObject config) =>
        PluginProcess.RunAsync(env, config.ToJsonString());

    internal static Task<PluginRun> Run(Dictionary<string, string> env, string stdin) =>
        PluginProcess.RunAsync(env, stdin);

    /// <summary>Asserts a spec error object on stdout and a non-zero exit; returns it for further checks.</summary>
    internal static JsonObject AssertError(PluginRun run, int code)
    {
        Assert.True(run.ExitCode != 0, $"expected failure, got exit 0; stdout: {run.Stdout}");
        var error = JsonNode.Parse(run.Stdout) as JsonObject;
        Assert.NotNull(error);
        Assert.True(code == (int)error["code"]!, $"expected code {code}: {run.Stdout}\nstderr: {run.Stderr}");
        Assert.False(string.IsNullOrEmpty((string?)error["msg"]));
        Assert.False(string.IsNullOrEmpty((string?)error["cniVersion"]));
        return error;
    }

    internal static void AssertSuccessNoOutput(PluginRun run)
    {
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}; stdout: {run.Stdout}\nstderr: {run.Stderr}");
        Assert.Equal("", run.Stdout.Trim());
    }

    internal static JsonObject AssertSuccessResult(PluginRun run)
    {
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}; stdout: {run.Stdout}\nstderr: {run.Stderr}");
        return Assert.IsType<JsonObject>(JsonNode.Parse(run.Stdout));
    }

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            Dir.Dispose();
        }
    }
}
