namespace Ambient.Cni;

/// <summary>CNI spec versions this plugin speaks and the per-command minimums.</summary>
internal static class CniVersions
{
    public const string Latest = "1.1.0";

    // 0.1.0/0.2.0 predate chaining (prevResult arrived in 0.3.0) so a chained plugin cannot honour them.
    public static readonly string[] Supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    /// <summary>CHECK arrived in 0.4.0; GC and STATUS in 1.1.0 (SPEC.md version table).</summary>
    public const string MinForCheck = "0.4.0";
    public const string MinForGcAndStatus = "1.1.0";

    public static bool IsSupported(string version) => Array.IndexOf(Supported, version) >= 0;

    public static bool AtLeast(string version, string minimum) =>
        Version.TryParse(version, out var v) && Version.TryParse(minimum, out var m) && v >= m;
}
