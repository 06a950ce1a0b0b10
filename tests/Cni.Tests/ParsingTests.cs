using System.Text;
using System.Text.Json.Nodes;
using Ambient.Cni.Tests.Support;

namespace Ambient.Cni.Tests;

/// <summary>In-process checks of the parsers the process tests build on.</summary>
public sealed class ParsingTests
{
    [Fact]
    public void CniArgs_reads_the_kubernetes_keys()
    {
        var args = CniArgs.Parse("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u;K8S_POD_INFRA_CONTAINER_ID=c;;");

        Assert.Equal(new CniArgs("p", "ns", "u", "c"), args);
        Assert.True(args.HasPod);
    }

    [Fact]
    public void CniArgs_value_may_contain_equals()
    {
        Assert.Equal("a=b", CniArgs.Parse("K8S_POD_NAME=a=b").PodName);
    }

    [Fact]
    public void CniArgs_empty_is_no_pod()
    {
        Assert.False(CniArgs.Parse(null).HasPod);
        Assert.False(CniArgs.Parse("K8S_POD_NAME=web").HasPod);
    }

    [Theory]
    [InlineData("0.4.0", "0.4.0", true)]
    [InlineData("1.0.0", "0.4.0", true)]
    [InlineData("0.3.1", "0.4.0", false)]
    [InlineData("1.0.0", "1.1.0", false)]
    [InlineData("x", "1.1.0", false)]
    public void Version_comparison(string version, string minimum, bool expected)
    {
        Assert.Equal(expected, CniVersions.AtLeast(version, minimum));
    }

    [Fact]
    public void Config_defaults_match_the_readme()
    {
        var config = CniConfig.Parse("""{"cniVersion":"1.1.0","name":"n","type":"ambient-cni"}"""u8);

        Assert.Equal("/var/run/ambient/cni.sock", config.AgentSocket);
        Assert.Equal("/var/run/ambient/enrollment.json", config.EnrollmentFile);
        Assert.Equal(["kube-system"], config.ExcludeNamespaces);
        Assert.Equal(TimeSpan.FromSeconds(30), config.AgentTimeout);
        Assert.Equal(LogLevel.Info, config.LogLevel);
        Assert.Null(config.LogFile);
        Assert.Null(config.PrevResult);
    }

    [Fact]
    public void Config_type_error_names_field_and_line()
    {
        var ex = Assert.Throws<CniException>(() => CniConfig.Parse(Encoding.UTF8.GetBytes("{\n\"cniVersion\":\"1.1.0\",\n\"excludeNamespaces\": 3\n}")));

        Assert.Equal(CniErrorCode.InvalidConfig, ex.Code);
        Assert.Contains("excludeNamespaces", ex.Message, StringComparison.Ordinal);
        Assert.Contains("line 3", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_rejects_socket_paths_too_long_for_sockaddr_un()
    {
        string path = "/" + new string('s', 120);
        var ex = Assert.Throws<CniException>(() => CniConfig.Parse(Encoding.UTF8.GetBytes($$"""{"cniVersion":"1.1.0","agentSocket":"{{path}}"}""")));
        Assert.Equal(CniErrorCode.InvalidConfig, ex.Code);
    }

    [Fact]
    public void PodIps_skips_host_side_addresses_and_strips_prefixes()
    {
        var result = (JsonObject)JsonNode.Parse("""
            {"interfaces":[{"name":"br"},{"name":"eth0","sandbox":"/ns"}],
             "ips":[{"address":"10.0.0.1/24","interface":0},{"address":"10.0.0.7/24","interface":1},{"address":"fd00:0:0::7/64"}]}
            """)!;

        Assert.Equal(["10.0.0.7", "fd00::7"], PrevResult.PodIps(result));
    }

    [Fact]
    public void PodIps_of_no_result_is_empty()
    {
        Assert.Empty(PrevResult.PodIps(null));
        Assert.Empty(PrevResult.PodIps(new JsonObject()));
    }

    [Theory]
    [InlineData("""{"version":1,"namespaces":["apps"]}""", "Enrolled")]
    [InlineData("""{"version":1,"pods":["apps/web"]}""", "Enrolled")]
    [InlineData("""{"version":1,"all":true}""", "Enrolled")]
    [InlineData("""{"version":1,"namespaces":["Apps"],"pods":["apps/web2","web"]}""", "NotEnrolled")]
    [InlineData("""{"version":1}""", "NotEnrolled")]
    [InlineData("""{"namespaces":["apps"]}""", "Unknown")]
    [InlineData("""{"version":1,"all":"yes"}""", "Unknown")]
    [InlineData("null", "Unknown")]
    public void Enrollment_file_verdicts(string json, string expected)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("e.json"), json);

        Assert.Equal(expected, Enrollment.Evaluate(dir.File("e.json"), "apps", "web").Verdict.ToString());
    }

    [Fact]
    public void Missing_enrollment_file_is_unknown()
    {
        using var dir = new TempDir();
        var (verdict, reason) = Enrollment.Evaluate(dir.File("absent.json"), "apps", "web");

        Assert.Equal(EnrollmentVerdict.Unknown, verdict);
        Assert.Contains("does not exist", reason, StringComparison.Ordinal);
    }
}
