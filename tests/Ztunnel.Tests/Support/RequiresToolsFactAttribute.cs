namespace Ambient.Ztunnel.Tests.Support;

/// <summary>
/// A fact that needs external programs (and optionally root). The skip reason is computed when the test is
/// discovered, so the test runs wherever the tools are installed (./test.sh installs them) and says exactly what is
/// missing elsewhere, instead of being skipped unconditionally.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RequiresToolsFactAttribute : FactAttribute
{
    public RequiresToolsFactAttribute(params string[] tools)
    {
        Skip = ExternalTools.MissingReason(tools, needsRoot: false);
    }

    /// <summary>Also require root (packet capture). A named argument, so it is applied after the constructor.</summary>
    public bool NeedsRoot
    {
        get => _needsRoot;
        set
        {
            _needsRoot = value;
            if (value && Skip is null && !ExternalTools.IsRoot)
            {
                Skip = "needs root (packet capture on lo); run ./test.sh as root";
            }
        }
    }

    private bool _needsRoot;
}

/// <summary>Finds programs on PATH the way a shell's <c>command -v</c> does.</summary>
public static class ExternalTools
{
    // sbin is searched too: Debian puts nghttpx in /usr/sbin, which is not on a non-root PATH.
    private static readonly string[] ExtraDirectories = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

    public static bool IsRoot => Environment.IsPrivilegedProcess;

    public static string? Find(string tool)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(ExtraDirectories))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate) && !OperatingSystem.IsWindows()
                && (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
            {
                return candidate;
            }
        }
        return null;
    }

    public static string Require(string tool) =>
        Find(tool) ?? throw new InvalidOperationException($"{tool} is not installed (./test.sh installs it with apt)");

    internal static string? MissingReason(string[] tools, bool needsRoot)
    {
        var missing = tools.Where(t => Find(t) is null).ToArray();
        if (missing.Length > 0)
        {
            return $"needs {string.Join(", ", missing)} on PATH (./test.sh installs them with apt)";
        }
        return needsRoot && !IsRoot ? "needs root" : null;
    }
}
