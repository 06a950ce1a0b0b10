namespace Ambient.Ztunnel.Tests.Support;

/// <summary>Issue 13, finding 7: README's commands work in a root shell, and its SOCKS5 example is the working one.</summary>
public sealed class ReadmeTests
{
    private static string Readme() => File.ReadAllText(Path.Combine(InPod.Support.Binaries.RepoRoot, "README.md"));

    [Fact]
    public void No_command_starts_with_sudo()
    {
        // Root shells (containers, CI, cloud images) have no sudo; the README says "in a root shell" instead.
        var lines = Readme().Split('\n').Where(l => l.TrimStart().StartsWith("sudo ", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 0, $"README commands starting with sudo:\n{string.Join('\n', lines)}");
    }

    [Fact]
    public void The_socks5_example_lets_the_agent_resolve_the_name_and_says_the_client_must_be_a_workload()
    {
        string readme = Readme();
        Assert.Contains("curl --socks5-hostname 127.0.0.1:15080 http://web.shop.svc.cluster.local/", readme, StringComparison.Ordinal);
        Assert.DoesNotContain("curl --socks5 127.0.0.1", readme, StringComparison.Ordinal);
        Assert.Contains("must be a workload of the mesh", readme, StringComparison.Ordinal);
    }
}
