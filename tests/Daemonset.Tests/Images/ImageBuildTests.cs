using System.Text.RegularExpressions;
using Ambient.Daemonset.Tests.Manifests;
using Ambient.Daemonset.Tests.Support;

namespace Ambient.Daemonset.Tests.Images;

/// <summary>
/// What CI can check of the image build without building (building takes minutes and is run by
/// daemonset/build-images.sh, whose self-check runs the images): the script parses and answers --help, and the
/// Containerfiles start what install.yaml expects them to start.
/// </summary>
public sealed partial class ImageBuildTests
{
    private static string Script => Repo.Daemonset("build-images.sh");

    private static string Containerfile(string name) => File.ReadAllText(Repo.Daemonset(Path.Combine("images", $"{name}.Containerfile")));

    [Fact]
    public async Task The_script_parses_and_explains_itself()
    {
        var syntax = await ChildProcess.RunAsync("bash", ["-n", Script]);
        Assert.True(syntax.ExitCode == 0, syntax.Output);

        var help = await ChildProcess.RunAsync("bash", [Script, "--help"]);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("localhost/ambient/ztunnel:<version>", help.Stdout, StringComparison.Ordinal);
        Assert.Contains("localhost/ambient/waypoint:<version>", help.Stdout, StringComparison.Ordinal);
        Assert.Contains("--save DIR", help.Stdout, StringComparison.Ordinal);

        var bad = await ChildProcess.RunAsync("bash", [Script, "--push"]);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("unknown argument '--push'", bad.Stderr, StringComparison.Ordinal);

        var version = await ChildProcess.RunAsync("bash", [Script, "--version", "latest"]);
        Assert.Equal(2, version.ExitCode);
        Assert.Contains("is not a semantic version", version.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_image_is_built_from_scratch_and_starts_what_install_yaml_runs()
    {
        foreach (string name in new[] { "ztunnel", "install-cni", "waypoint" })
        {
            string file = Containerfile(name);
            Assert.Matches(new Regex(@"^FROM scratch$", RegexOptions.Multiline), file);
            Assert.DoesNotMatch(new Regex(@"^FROM (?!scratch)", RegexOptions.Multiline), file);
            Assert.Contains($"\"/usr/local/bin/{name}\"", Entrypoint().Match(file).Value, StringComparison.Ordinal);
        }

        // The agent's container gives args only: the image's entrypoint is the agent.
        Assert.Null(Install.Container(Install.Agent).Command);
        // The installer's readiness probe runs "install-cni" by name: the image's PATH must find it.
        Assert.Equal("install-cni", Install.Container(Install.Installer).ReadinessProbe.Exec.Command[0]);
        Assert.Matches(@"(?m)^ENV PATH=(.*:)?/usr/local/bin(:|$)", Containerfile("install-cni"));
        // The waypoint is not root, as 'waypoint generate' runs it (uid 1337, runAsNonRoot).
        Assert.Matches(@"(?m)^USER 1337:1337$", Containerfile("waypoint"));
    }

    [GeneratedRegex(@"(?m)^ENTRYPOINT \[.*\]$")]
    private static partial Regex Entrypoint();
}
