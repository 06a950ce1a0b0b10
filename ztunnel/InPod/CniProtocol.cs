using System.Text.Json.Serialization;

namespace Ambient.Ztunnel.InPod;

// The agent side of cni-plugin/PROTOCOL.md (version 1). Wire names are the protocol's; keep both in step.

internal sealed record CniRequest
{
    [JsonPropertyName("version")]
    public int Version { get; init; }

    [JsonPropertyName("command")]
    public string? Command { get; init; }

    [JsonPropertyName("pod")]
    public CniPod? Pod { get; init; }

    [JsonPropertyName("validAttachments")]
    public List<CniAttachment>? ValidAttachments { get; init; }
}

internal sealed record CniPod
{
    [JsonPropertyName("uid")]
    public string? Uid { get; init; }

    [JsonPropertyName("name")]
    public string? Name { get; init; }

    [JsonPropertyName("namespace")]
    public string? Namespace { get; init; }

    [JsonPropertyName("containerId")]
    public string? ContainerId { get; init; }

    [JsonPropertyName("netns")]
    public string? Netns { get; init; }

    [JsonPropertyName("ifname")]
    public string? IfName { get; init; }

    [JsonPropertyName("ips")]
    public List<string>? Ips { get; init; }
}

internal sealed record CniAttachment
{
    [JsonPropertyName("containerId")]
    public string? ContainerId { get; init; }

    [JsonPropertyName("ifname")]
    public string? IfName { get; init; }
}

internal sealed record CniResponse(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("message"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Message = null)
{
    public static readonly CniResponse Captured = new("captured");
    public static readonly CniResponse NotEnrolled = new("not-enrolled");
    public static readonly CniResponse Removed = new("removed");
    public static readonly CniResponse Ready = new("ready");

    public static CniResponse Error(string message) => new("error", message);
}

/// <summary>The enrollment file (PROTOCOL.md section 5), read by the plugin only while the agent is unreachable.</summary>
internal sealed record EnrollmentFile(
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("namespaces")] List<string> Namespaces,
    [property: JsonPropertyName("pods")] List<string> Pods,
    [property: JsonPropertyName("all")] bool All);

/// <summary>One captured pod as the agent persists it, so a restarted agent re-adopts it.</summary>
internal sealed record CapturedPod
{
    [JsonPropertyName("uid")]
    public required string Uid { get; init; }

    [JsonPropertyName("name")]
    public required string Name { get; init; }

    [JsonPropertyName("namespace")]
    public required string Namespace { get; init; }

    [JsonPropertyName("containerId")]
    public required string ContainerId { get; init; }

    [JsonPropertyName("ifname")]
    public required string IfName { get; init; }

    [JsonPropertyName("netns")]
    public required string Netns { get; init; }

    [JsonPropertyName("ips")]
    public required List<string> Ips { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CniRequest))]
[JsonSerializable(typeof(CniResponse))]
[JsonSerializable(typeof(EnrollmentFile))]
[JsonSerializable(typeof(List<CapturedPod>))]
[JsonSerializable(typeof(HandoverMessage))]
internal sealed partial class InPodJson : JsonSerializerContext;
