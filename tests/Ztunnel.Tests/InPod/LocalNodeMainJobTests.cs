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

    /// <summary>Issue 8: the embedded mesh became manifests; --manifests swaps in a user's own, and says so when wrong.</summary>
    [Fact]
    public async Task LocalNodeScript_Manifests_without_a_value_or_a_missing_path_is_a_clear_error()
    {
        var bare = await Command.RunAsync(Script, ["--manifests"], TimeSpan.FromMinutes(1));
        Assert.Equal(2, bare.ExitCode);
        Assert.Contains("--manifests needs a file or folder", bare.Stderr, StringComparison.Ordinal);

        string missing = Path.Combine(Path.GetTempPath(), $"no-such-manifests-{Guid.NewGuid():N}");
        var absent = await Command.RunAsync(Script, ["--manifests", missing], TimeSpan.FromMinutes(1));
        Assert.Equal(2, absent.ExitCode);
        Assert.Contains($"--manifests {missing}: no such file or folder", absent.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("unbound variable", absent.Stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// Two runs at once share the fixed names and the build folder (one run's agents once loaded the other checkout's
    /// libraries): while the lock is held, a second run refuses before it creates or builds anything.
    /// </summary>
    [RootFact]
    public async Task LocalNodeScript_Refuses_to_run_while_another_run_holds_the_lock()
    {
        Assert.True(AmbNamespaces().Count == 0, "a local node is running; this test needs none");
        bool rootExisted = Directory.Exists(NodeRoot);
        // .NET takes flock(LOCK_EX) for FileShare.None on Linux, the lock local-node.sh asks for with flock(1);
        // flock -n proves it is held before the script runs.
        using (new FileStream(LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var probe = await Command.RunAsync("flock", ["-n", LockFile, "true"], TimeSpan.FromMinutes(1));
            Assert.False(probe.Ok, $"the test could not hold {LockFile}: {probe}");

            var run = await Command.RunAsync(Script, ["--quiet"], TimeSpan.FromMinutes(2));
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("another local-node.sh is running", run.Stderr, StringComparison.Ordinal);
            Assert.Empty(AmbNamespaces());
            Assert.Equal(rootExisted, Directory.Exists(NodeRoot));
        }
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
        foreach (var option in new[] { "--keep", "--down", "--quiet", "--config FILE", "--manifests PATH", "--help" })
        {
            Assert.Contains(option, usage, StringComparison.Ordinal);
        }
        // A root shell has no sudo: neither the usage nor the script's own errors may tell the user to run it.
        Assert.DoesNotContain("sudo", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("sudo", await File.ReadAllTextAsync(Script), StringComparison.Ordinal);
    }

    private static string Script => Path.Combine(Binaries.RepoRoot, "local-node.sh");

    private const string LockFile = "/run/ambient-local-node.lock";

    private const string NodeRoot = "/tmp/ambient-local-node";

    private static List<string> AmbNamespaces() =>
        Directory.Exists("/var/run/netns")
            ? [.. Directory.EnumerateFiles("/var/run/netns", $"{Prefix}*").Select(Path.GetFileName).OfType<string>()]
            : [];
}
