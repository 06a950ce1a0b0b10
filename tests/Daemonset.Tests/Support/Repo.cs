namespace Ambient.Daemonset.Tests.Support;

/// <summary>Paths of the repository the tests run from (found by walking up to Ambient.sln).</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Daemonset(string name) => Path.Combine(Root, "daemonset", name);

    public static string InstallYaml => Daemonset("install.yaml");

    /// <summary>The agent as built next to these tests (same configuration), run with <c>dotnet</c>.</summary>
    public static string AgentDll
    {
        get
        {
            // .../tests/Daemonset.Tests/bin/<Configuration>/net10.0/
            string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
            string dll = Path.Combine(Root, "ztunnel", "bin", configuration, "net10.0", "ztunnel.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException("the agent is not built; the project reference to ztunnel builds it first", dll);
        }
    }

    /// <summary>The waypoint as built next to these tests (same configuration), run with <c>dotnet</c>.</summary>
    public static string WaypointDll
    {
        get
        {
            string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
            string dll = Path.Combine(Root, "waypoint", "bin", configuration, "net10.0", "waypoint.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException("the waypoint is not built; the project reference to waypoint builds it first", dll);
        }
    }

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
