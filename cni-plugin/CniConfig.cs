using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Ambient.Cni;

/// <summary>
/// The validated plugin configuration of one invocation: the network config from stdin with defaults
/// applied (README.md lists the keys). Immutable; built once by <see cref="Parse"/>.
/// </summary>
internal sealed record CniConfig
{
    public const string DefaultAgentSocket = "/var/run/ambient/cni.sock";
    public const string DefaultEnrollmentFile = "/var/run/ambient/enrollment.json";
    public const double DefaultAgentTimeoutSeconds = 30;

    // sockaddr_un.sun_path is 108 bytes including the terminating NUL.
    private const int MaxUnixSocketPathBytes = 107;

    public required string CniVersion { get; init; }
    public string? Name { get; init; }
    public string? Type { get; init; }
    public string AgentSocket { get; init; } = DefaultAgentSocket;
    public string EnrollmentFile { get; init; } = DefaultEnrollmentFile;
    public IReadOnlyList<string> ExcludeNamespaces { get; init; } = ["kube-system"];
    public TimeSpan AgentTimeout { get; init; } = TimeSpan.FromSeconds(DefaultAgentTimeoutSeconds);
    public LogLevel LogLevel { get; init; } = LogLevel.Info;
    public string? LogFile { get; init; }

    /// <summary>The previous plugin's result, kept as the exact JSON tree so unknown fields survive.</summary>
    public JsonObject? PrevResult { get; init; }

    /// <summary>GC only: the attachments the runtime still considers live.</summary>
    public IReadOnlyList<AgentAttachment> ValidAttachments { get; init; } = [];

    /// <summary>
    /// Parses stdin. Syntax errors are code 6 (decoding), type or value errors code 7 (invalid config),
    /// an unsupported <c>cniVersion</c> code 1; each message names the field and line to fix.
    /// </summary>
    public static CniConfig Parse(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty || utf8.Trim(" \t\r\n"u8).IsEmpty)
        {
            throw new CniException(CniErrorCode.DecodingFailure, "no network configuration on stdin", "the runtime must write the plugin's JSON configuration to stdin");
        }

        JsonNode? rootNode;
        try
        {
            // JsonObject cannot hold a key twice and would throw later, deep inside prevResult; reject
            // duplicates here where the error can say where they are.
            rootNode = JsonNode.Parse(utf8, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException ex)
        {
            throw new CniException(
                CniErrorCode.DecodingFailure,
                $"network configuration on stdin is not valid JSON (line {Line(ex)}, byte {ex.BytePositionInLine + 1})",
                "malformed JSON or a key that appears twice in one object");
        }

        if (rootNode is not JsonObject root)
        {
            throw new CniException(CniErrorCode.DecodingFailure, "network configuration on stdin must be a JSON object");
        }

        PluginConfigDto dto;
        try
        {
            dto = JsonSerializer.Deserialize(utf8, JsonContext.Default.PluginConfigDto) ?? new PluginConfigDto();
        }
        catch (JsonException ex)
        {
            // The serializer's own message is a resource key under UseSystemResourceKeys; say it ourselves.
            string field = ex.Path is { Length: > 2 } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : ex.Path ?? "?";
            throw new CniException(
                CniErrorCode.InvalidConfig,
                $"invalid network configuration: field {field} (line {Line(ex)}) has the wrong type",
                ExpectedType(field));
        }

        if (dto.CniVersion is null)
        {
            throw new CniException(CniErrorCode.InvalidConfig, "invalid network configuration: cniVersion is required");
        }

        if (!CniVersions.IsSupported(dto.CniVersion))
        {
            throw new CniException(
                CniErrorCode.IncompatibleVersion,
                $"incompatible CNI version {dto.CniVersion}",
                $"ambient-cni supports {string.Join(", ", CniVersions.Supported)}");
        }

        var problems = new List<string>();
        string socket = CheckPath(dto.AgentSocket, "agentSocket", DefaultAgentSocket, problems);
        if (Encoding.UTF8.GetByteCount(socket) > MaxUnixSocketPathBytes)
        {
            problems.Add($"agentSocket: \"{socket}\" is longer than the {MaxUnixSocketPathBytes} bytes a unix socket path may have");
        }

        string enrollment = CheckPath(dto.EnrollmentFile, "enrollmentFile", DefaultEnrollmentFile, problems);
        string? logFile = dto.LogFile is null ? null : CheckPath(dto.LogFile, "logFile", "", problems);

        IReadOnlyList<string> exclude = ["kube-system"];
        if (dto.ExcludeNamespaces is { } list)
        {
            var names = new List<string>(list.Count);
            for (int i = 0; i < list.Count; i++)
            {
                if (string.IsNullOrEmpty(list[i]))
                {
                    problems.Add($"excludeNamespaces[{i}]: must be a non-empty namespace name");
                }
                else
                {
                    names.Add(list[i]!);
                }
            }

            exclude = names;
        }

        double timeout = dto.AgentTimeoutSeconds ?? DefaultAgentTimeoutSeconds;
        if (!(timeout > 0 && timeout <= 3600))
        {
            problems.Add($"agentTimeoutSeconds: {timeout} is out of range (0 < seconds <= 3600)");
        }

        var level = LogLevel.Info;
        if (dto.LogLevel is { } levelName && !LogLevels.TryParse(levelName, out level))
        {
            problems.Add($"logLevel: \"{levelName}\" is not one of debug, info, warn, error, none");
        }

        JsonObject? prevResult = null;
        if (root["prevResult"] is { } prev)
        {
            if (prev is JsonObject obj)
            {
                prevResult = obj;
            }
            else
            {
                problems.Add("prevResult: must be a JSON object (the previous plugin's result)");
            }
        }

        // libcni sends both spellings because an early 1.1 draft named the key cni.dev/attachments.
        var attachments = new List<AgentAttachment>();
        var rawAttachments = dto.ValidAttachments ?? dto.Attachments;
        if (rawAttachments is not null)
        {
            for (int i = 0; i < rawAttachments.Count; i++)
            {
                if (rawAttachments[i] is { ContainerId: { Length: > 0 } id, IfName: { Length: > 0 } ifname })
                {
                    attachments.Add(new AgentAttachment { ContainerId = id, IfName = ifname });
                }
                else
                {
                    problems.Add($"cni.dev/valid-attachments[{i}]: needs non-empty containerID and ifname");
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new CniException(
                CniErrorCode.InvalidConfig,
                $"invalid network configuration{(dto.Name is null ? "" : $" \"{dto.Name}\"")}: {string.Join("; ", problems)}",
                "fix the ambient-cni entry of the CNI conflist (see cni-plugin/README.md)");
        }

        return new CniConfig
        {
            CniVersion = dto.CniVersion,
            Name = dto.Name,
            Type = dto.Type,
            AgentSocket = socket,
            EnrollmentFile = enrollment,
            ExcludeNamespaces = exclude,
            AgentTimeout = TimeSpan.FromSeconds(timeout),
            LogLevel = level,
            LogFile = logFile,
            PrevResult = prevResult,
            ValidAttachments = attachments,
        };
    }

    private static string CheckPath(string? value, string field, string fallback, List<string> problems)
    {
        if (value is null)
        {
            return fallback;
        }

        if (!System.IO.Path.IsPathFullyQualified(value))
        {
            problems.Add($"{field}: \"{value}\" must be an absolute path");
        }

        return value;
    }

    private static long Line(JsonException ex) => (ex.LineNumber ?? 0) + 1;

    private static string? ExpectedType(string field) => field switch
    {
        "cniVersion" or "name" or "type" or "agentSocket" or "enrollmentFile" or "logLevel" or "logFile" => $"{field} must be a string",
        "agentTimeoutSeconds" => "agentTimeoutSeconds must be a number of seconds",
        _ when field.StartsWith("excludeNamespaces", StringComparison.Ordinal) => "excludeNamespaces must be an array of namespace names",
        _ when field.StartsWith("cni.dev/", StringComparison.Ordinal) || field.StartsWith("['cni.dev/", StringComparison.Ordinal)
            => "cni.dev/valid-attachments must be an array of {\"containerID\",\"ifname\"} objects",
        _ => null,
    };
}

/// <summary>The shape of the keys the plugin reads; every other key of the network config is ignored.</summary>
internal sealed class PluginConfigDto
{
    [JsonPropertyName("cniVersion")] public string? CniVersion { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
    [JsonPropertyName("type")] public string? Type { get; set; }
    [JsonPropertyName("agentSocket")] public string? AgentSocket { get; set; }
    [JsonPropertyName("enrollmentFile")] public string? EnrollmentFile { get; set; }
    [JsonPropertyName("excludeNamespaces")] public List<string?>? ExcludeNamespaces { get; set; }
    [JsonPropertyName("agentTimeoutSeconds")] public double? AgentTimeoutSeconds { get; set; }
    [JsonPropertyName("logLevel")] public string? LogLevel { get; set; }
    [JsonPropertyName("logFile")] public string? LogFile { get; set; }
    [JsonPropertyName("cni.dev/valid-attachments")] public List<GcAttachmentDto?>? ValidAttachments { get; set; }
    [JsonPropertyName("cni.dev/attachments")] public List<GcAttachmentDto?>? Attachments { get; set; }
}

/// <summary>One entry of <c>cni.dev/valid-attachments</c> (SPEC.md, GC); note the spec's "containerID" spelling.</summary>
internal sealed class GcAttachmentDto
{
    [JsonPropertyName("containerID")] public string? ContainerId { get; set; }
    [JsonPropertyName("ifname")] public string? IfName { get; set; }
}
