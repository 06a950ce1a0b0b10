using System.Text.Json;
using System.Text.Json.Serialization;

namespace Ambient.Cni;

internal enum EnrollmentVerdict
{
    Enrolled,
    NotEnrolled,

    /// <summary>The file is missing or unreadable: the plugin must fail closed.</summary>
    Unknown,
}

/// <summary>
/// The agent's last published view of which pods are in the mesh (PROTOCOL.md, "Enrollment file"). Read
/// only when the agent cannot be asked, so an enrolled pod never starts uncaptured while the agent is down.
/// </summary>
internal static class Enrollment
{
    public const int CurrentVersion = 1;

    // Far above any real node's list; a larger file is corrupt or hostile, not a bigger cluster.
    private const long MaxFileBytes = 16 * 1024 * 1024;

    public static (EnrollmentVerdict Verdict, string Reason) Evaluate(string path, string podNamespace, string podName)
    {
        EnrollmentDto? dto;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                return (EnrollmentVerdict.Unknown, $"enrollment file {path} does not exist");
            }

            if (info.Length > MaxFileBytes)
            {
                return (EnrollmentVerdict.Unknown, $"enrollment file {path} is larger than {MaxFileBytes} bytes");
            }

            byte[] bytes = File.ReadAllBytes(path);
            dto = JsonSerializer.Deserialize(bytes, JsonContext.Default.EnrollmentDto);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (EnrollmentVerdict.Unknown, $"cannot read enrollment file {path}: {ex.Message}");
        }
        catch (JsonException ex)
        {
            return (EnrollmentVerdict.Unknown, $"enrollment file {path} is not valid (line {(ex.LineNumber ?? 0) + 1}, path {ex.Path})");
        }

        if (dto is null)
        {
            return (EnrollmentVerdict.Unknown, $"enrollment file {path} holds null");
        }

        if (dto.Version != CurrentVersion)
        {
            return (EnrollmentVerdict.Unknown, $"enrollment file {path} has version {dto.Version?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)"}; this plugin reads version {CurrentVersion}");
        }

        if (dto.All == true)
        {
            return (EnrollmentVerdict.Enrolled, $"enrollment file {path} enrolls all pods");
        }

        if (dto.Namespaces is { } namespaces && namespaces.Contains(podNamespace, StringComparer.Ordinal))
        {
            return (EnrollmentVerdict.Enrolled, $"enrollment file {path} enrolls namespace {podNamespace}");
        }

        string key = $"{podNamespace}/{podName}";
        if (dto.Pods is { } pods && pods.Contains(key, StringComparer.Ordinal))
        {
            return (EnrollmentVerdict.Enrolled, $"enrollment file {path} enrolls pod {key}");
        }

        return (EnrollmentVerdict.NotEnrolled, $"enrollment file {path} does not enroll {key}");
    }
}

internal sealed class EnrollmentDto
{
    [JsonPropertyName("version")] public int? Version { get; set; }
    [JsonPropertyName("namespaces")] public List<string>? Namespaces { get; set; }
    [JsonPropertyName("pods")] public List<string>? Pods { get; set; }
    [JsonPropertyName("all")] public bool? All { get; set; }
}
