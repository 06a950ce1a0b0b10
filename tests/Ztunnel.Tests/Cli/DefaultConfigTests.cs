using Ambient.Mesh.Config;
using Ambient.Ztunnel.Tests.InPod;
using Ambient.Ztunnel.Tests.InPod.Support;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.Cli;

/// <summary>
/// Issue 13, finding 7: README's SOCKS5 example, exactly as a new user types it, against the agent started without
/// --config (the embedded default). It runs in a network namespace of its own, so the default ports (15000, 15008,
/// 15080, ...) cannot clash with anything else on this machine.
/// </summary>
public sealed class DefaultConfigTests
{
    [Fact]
    public void The_embedded_default_is_a_loopback_mesh_with_a_workload_for_127_0_0_1()
    {
        using var resource = typeof(Agent).Assembly.GetManifestResourceStream("default-config.yaml")!;
        using var reader = new StreamReader(resource);
        var loaded = ConfigLoader.Parse(reader.ReadToEnd(), "(embedded default config)");
        Assert.True(loaded.Ok, string.Join("\n", loaded.Errors));
        Assert.Empty(loaded.Warnings);
        var config = loaded.Config!;
        TestAddresses.AssertDialable(config); // every address in 127.0.0.0/8: the example never leaves the host
        Assert.Contains(config.Workloads, w => w.WorkloadIps.Contains(System.Net.IPAddress.Loopback));
        Assert.Contains(config.Services, s => s.Hostname == "web.shop.svc.cluster.local");
    }

    [RootFact]
    public async Task Readme_socks5_example_works_against_the_embedded_default_config()
    {
        string ns = $"zt-readme-{Environment.ProcessId}-{Random.Shared.Next(1000, 9999)}";
        string dir = Directory.CreateTempSubdirectory("ztunnel-readme-").FullName;
        await File.WriteAllTextAsync(Path.Combine(dir, "index.html"), "hello through the mesh\n");
        var created = await Command.RunAsync("ip", ["netns", "add", ns], TimeSpan.FromSeconds(10));
        Assert.True(created.Ok, created.ToString());
        ExternalProcess? agent = null, web = null;
        try
        {
            await Command.RunAsync("ip", ["-n", ns, "link", "set", "lo", "up"], TimeSpan.FromSeconds(10));
            string ztunnel = Path.Combine(AppContext.BaseDirectory, "ztunnel.dll");
            // `ztunnel &` with no --config, as README says (the state directory only keeps the generated CA out of /var/lib).
            agent = ExternalProcess.Start("ip", ["netns", "exec", ns, "dotnet", ztunnel, "--state-dir", Path.Combine(dir, "state")]);
            await agent.WaitForOutputAsync(o => o.Contains("ztunnel ready", StringComparison.Ordinal), "agent ready", TimeSpan.FromSeconds(30));
            // `python3 -m http.server 8080 --bind 127.0.0.2 &`
            web = ExternalProcess.Start("ip", ["netns", "exec", ns, "python3", "-u", "-m", "http.server", "8080", "--bind", "127.0.0.2", "--directory", dir]);
            await web.WaitForOutputAsync(o => o.Contains("Serving HTTP", StringComparison.Ordinal), "http.server listening", TimeSpan.FromSeconds(30));

            // `curl --socks5-hostname 127.0.0.1:15080 http://web.shop.svc.cluster.local/`
            var curl = await Command.RunAsync("ip",
                ["netns", "exec", ns, "curl", "-sS", "--max-time", "20", "--socks5-hostname", "127.0.0.1:15080", "http://web.shop.svc.cluster.local/"],
                TimeSpan.FromSeconds(40));
            Assert.True(curl.Ok, $"{curl}\nagent:\n{agent.Stderr}\n{agent.Stdout}");
            Assert.Equal("hello through the mesh\n", curl.Stdout);

            // Through an mTLS HBONE tunnel, with both identities: the access log (stdout) says so.
            await agent.WaitForOutputAsync(o => o.Contains("src.identity=\"spiffe://cluster.local/ns/shop/sa/local\"", StringComparison.Ordinal)
                && o.Contains("dst.identity=\"spiffe://cluster.local/ns/shop/sa/web\"", StringComparison.Ordinal), "access log with both identities", TimeSpan.FromSeconds(10));
        }
        finally
        {
            if (web is not null)
            {
                await web.DisposeAsync();
            }
            if (agent is not null)
            {
                await agent.DisposeAsync();
            }
            await Command.RunAsync("ip", ["netns", "del", ns], TimeSpan.FromSeconds(10));
            Directory.Delete(dir, recursive: true);
        }
    }
}
