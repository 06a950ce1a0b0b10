namespace Ambient.Cni.Tests.Chaining;

/// <summary>
/// A fact that needs root (to create network namespaces and bridges) and the reference CNI plugins from
/// Debian's containernetworking-plugins. Skips with the reason instead of failing elsewhere.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NetnsFactAttribute : FactAttribute
{
    public const string PluginDir = "/usr/lib/cni";

    public NetnsFactAttribute()
    {
        if (!OperatingSystem.IsLinux())
        {
            Skip = "network namespaces need Linux";
        }
        else if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root to create network namespaces and bridges (run the tests as root)";
        }
        else if (!File.Exists(Path.Combine(PluginDir, "bridge")) || !File.Exists(Path.Combine(PluginDir, "host-local")))
        {
            Skip = $"reference CNI plugins not found in {PluginDir} (apt-get install containernetworking-plugins)";
        }
        else if (!File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip") && !File.Exists("/bin/ip"))
        {
            Skip = "the ip tool (iproute2) is not installed";
        }
    }
}
