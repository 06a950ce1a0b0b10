namespace Ambient.Daemonset.Tests.Support;

/// <summary>Paths of the repository the tests run from (found by walking up to Ambient.sln).</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Daemonset(string name) => Path.Combine(Root, "daemonset", name);

    public static string InstallYaml => Daemonset("install.yaml");

    /// <summary>The image version every manifest and image tag uses (daemonset/VERSION).</summary>
    public static string Version => File.ReadAllText(Daemonset("VERSION")).Trim();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ambient.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"no Ambient.sln above {AppContext.BaseDirectory}");
    }
}
