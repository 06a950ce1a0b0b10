namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// A fact that builds nodes and pods out of network namespaces, so it needs root, Linux, the reference CNI plugins
/// (Debian's containernetworking-plugins) and the tools scripts/topology.sh and the tests call. When one is missing
/// the test is skipped with the reason, so a developer without root sees why instead of a wall of failures.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RootFactAttribute : FactAttribute
{
    public const string CniPluginDir = "/usr/lib/cni";

    private static readonly string[] Tools = ["ip", "nsenter", "iptables-save", "nft", "ss", "curl", "python3", "openssl", "tcpdump"];

    private static readonly Lazy<string?> s_skip = new(ComputeSkip);

    /// <summary>Why in-pod tests cannot run here, or null; class fixtures check it too, since xunit builds them even for skipped tests.</summary>
    public static string? SkipReason => s_skip.Value;

    public RootFactAttribute()
    {
        if (s_skip.Value is { } reason)
        {
            Skip = reason;
        }
    }

    private static string? ComputeSkip()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "in-pod tests need Linux network namespaces";
        }
        if (!Environment.IsPrivilegedProcess)
        {
            return "in-pod tests need root (network namespaces, iptables, tcpdump); run the tests as root";
        }
        foreach (var plugin in new[] { "bridge", "host-local" })
        {
            if (!File.Exists(Path.Combine(CniPluginDir, plugin)))
            {
                return $"{CniPluginDir}/{plugin} is missing (apt-get install containernetworking-plugins)";
            }
        }
        foreach (var tool in Tools)
        {
            if (FindOnPath(tool) is null)
            {
                return $"'{tool}' is not on PATH (local-node.sh lists the Debian packages the in-pod tests need)";
            }
        }
        return null;
    }

    internal static string? FindOnPath(string tool)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        // sbin is often missing from a non-login PATH while the tools live there.
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin"]))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}
