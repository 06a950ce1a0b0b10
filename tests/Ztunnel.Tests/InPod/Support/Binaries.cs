using System.Reflection;

namespace Ambient.Ztunnel.Tests.InPod.Support;

/// <summary>
/// Where the programs under test are: the repository (for scripts/), the agent this test assembly was built against
/// (next to it, through the project reference) and ambient-cni, built from the same sources in the same configuration
/// so the plugin and the agent always speak the same protocol revision.
/// </summary>
internal static class Binaries
{
    private static readonly SemaphoreSlim s_buildGate = new(1, 1);
    private static string? s_cniDll;

    public static string Configuration { get; } =
        typeof(Binaries).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string TopologyScript => Path.Combine(RepoRoot, "scripts", "topology.sh");

    public static string CniExecScript => Path.Combine(RepoRoot, "scripts", "cni-exec.py");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ambient.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no Ambient.sln above {AppContext.BaseDirectory}: the in-pod tests run from the repository's build output");
    }

    /// <summary>The agent as a command line prefix: the apphost when the build made one, else <c>dotnet ztunnel.dll</c>.</summary>
    public static string[] Ztunnel()
    {
        var apphost = Path.Combine(AppContext.BaseDirectory, "ztunnel");
        if (File.Exists(apphost))
        {
            return [apphost];
        }
        var dll = Path.Combine(AppContext.BaseDirectory, "ztunnel.dll");
        if (File.Exists(dll))
        {
            return ["dotnet", dll];
        }
        throw new FileNotFoundException("ztunnel is not next to the tests; is the project reference to ztunnel intact?", dll);
    }

    /// <summary>
    /// ambient-cni.dll from cni-plugin/bin/&lt;configuration&gt;/net10.0, built once per test run. Ztunnel.Tests does not
    /// reference the plugin (it is a separate executable), so the fixture builds it; the build is incremental (seconds
    /// when nothing changed) and keeps the plugin in step with the sources, like the agent next to the tests.
    /// </summary>
    public static async Task<string> AmbientCniDllAsync()
    {
        await s_buildGate.WaitAsync(TimeSpan.FromMinutes(5));
        try
        {
            if (s_cniDll is not null)
            {
                return s_cniDll;
            }
            var dll = Path.Combine(RepoRoot, "cni-plugin", "bin", Configuration, "net10.0", "ambient-cni.dll");
            await Command.CheckAsync("dotnet", ["build", Path.Combine(RepoRoot, "cni-plugin"), "-c", Configuration, "-nologo", "-v", "quiet"], TimeSpan.FromMinutes(4));
            if (!File.Exists(dll))
            {
                throw new FileNotFoundException($"dotnet build cni-plugin -c {Configuration} did not produce {dll}");
            }
            s_cniDll = dll;
            return dll;
        }
        finally
        {
            s_buildGate.Release();
        }
    }

    /// <summary>Installs ambient-cni into <paramref name="binDir"/> as the runtime finds plugins: an executable named by its type.</summary>
    public static async Task InstallCniPluginAsync(string binDir)
    {
        var dll = await AmbientCniDllAsync();
        Directory.CreateDirectory(binDir);
        var wrapper = Path.Combine(binDir, "ambient-cni");
        await File.WriteAllTextAsync(wrapper, $"#!/bin/sh\nexec dotnet '{dll}' \"$@\"\n");
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("CNI plugins run on Linux");
        }
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
    }
}
