using Ambient.Ztunnel.Tests.InPod.Support;
using Xunit.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// local-node.sh uses fixed names (amb-* namespaces, /tmp/ambient-local-node), so it can never run twice at once.
/// A collection of its own with parallelization off runs it after the parallel tests, alone: no clash with itself and
/// no competition for the CPU while it builds NativeAOT binaries.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MainJobCollection
{
    public const string Name = "local-node.sh (fixed names, run alone)";
}

/// <summary>The main job end to end, exactly as a user runs it: <c>sudo ./local-node.sh --quiet</c>.</summary>
[Collection(MainJobCollection.Name)]
[Trait("Category", "MainJob")]
public sealed class LocalNodeMainJobTests(ITestOutputHelper output)
{
    private const string Prefix = "amb-";

    [RootFact]
    public async Task LocalNodeScript_PassesEveryCheck_AndLeavesNothingBehind()
    {
        Assert.True(AmbNamespaces().Count == 0,
            $"a local node is already running ({string.Join(", ", AmbNamespaces())}); remove it with ./local-node.sh --down");
        string script = Path.Combine(Binaries.RepoRoot, "local-node.sh");
        var run = Daemon.Start("local-node.sh", script, ["--quiet"]);
        try
        {
            bool finished = await run.WaitForExitAsync(TimeSpan.FromMinutes(10));
            if (!finished)
            {
                // TERM lets the script's trap remove what it created; KILL (on dispose) would not.
                run.Signal(Daemon.SigTerm);
                await run.WaitForExitAsync(TimeSpan.FromMinutes(1));
            }
            output.WriteLine(string.Join('\n', run.Stdout));
            output.WriteLine(string.Join('\n', run.Stderr));
            Assert.True(finished, "local-node.sh did not finish within 10 minutes");
            Assert.Equal(0, run.ExitCode);
            Assert.Contains(run.Stdout, l => l.Contains("all checks passed", StringComparison.Ordinal));
            Assert.Empty(AmbNamespaces());
        }
        finally
        {
            await run.DisposeAsync();
            if (AmbNamespaces().Count > 0)
            {
                // We started this node (none existed before): don't leave it to the next run.
                await Command.RunAsync(script, ["--down"], TimeSpan.FromMinutes(2));
            }
        }
    }

    /// <summary>Issue 13, finding 7: the script's own command-line errors, as a new user meets them.</summary>
    [Fact]
    public async Task LocalNodeScript_Config_without_a_value_is_a_clear_error()
    {
        var run = await Command.RunAsync(Script, ["--config"], TimeSpan.FromMinutes(1));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--config needs a file", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("unbound variable", run.Stderr, StringComparison.Ordinal);
    }

    [RootFact]
    public async Task LocalNodeScript_Down_with_nothing_running_says_so_and_succeeds()
    {
        Assert.True(AmbNamespaces().Count == 0, "a local node is running; this test needs none");
        var run = await Command.RunAsync(Script, ["--down"], TimeSpan.FromMinutes(1));
        Assert.True(run.Ok, run.ToString());
        Assert.Contains("nothing to remove", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LocalNodeScript_Usage_lists_every_option_and_no_sudo()
    {
        var run = await Command.RunAsync(Script, ["--help"], TimeSpan.FromMinutes(1));
        Assert.True(run.Ok, run.ToString());
        string usage = run.Stdout.Split('\n')[0];
        foreach (var option in new[] { "--keep", "--down", "--quiet", "--config FILE", "--help" })
        {
            Assert.Contains(option, usage, StringComparison.Ordinal);
        }
        // A root shell has no sudo: neither the usage nor the script's own errors may tell the user to run it.
        Assert.DoesNotContain("sudo", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("sudo", await File.ReadAllTextAsync(Script), StringComparison.Ordinal);
    }

    private static string Script => Path.Combine(Binaries.RepoRoot, "local-node.sh");

    private static List<string> AmbNamespaces() =>
        Directory.Exists("/var/run/netns")
            ? [.. Directory.EnumerateFiles("/var/run/netns", $"{Prefix}*").Select(Path.GetFileName).OfType<string>()]
            : [];
}
