using System.Text.Json.Serialization;

namespace Ambient.Cni;

// Wire types of the plugin <-> agent protocol. PROTOCOL.md is the normative description; keep both in step.

internal sealed record AgentRequest
{
    public const int CurrentVersion = 1;

    [JsonPropertyName("version")]
    public int Version { get; init; } = CurrentVersion;

    [JsonPropertyName("command")]
    public required string Command { get; init; }

    [JsonPropertyName("pod")]
    public AgentPod? Pod { get; init; }

    [JsonPropertyName("validAttachments")]
    public IReadOnlyList<AgentAttachment>? ValidAttachments { get; init; }
}

internal sealed record AgentPod
{
    [JsonPropertyName("uid")]
    public string? Uid { get; init; }

    [JsonPropertyName("name")]
    public string? Name { get; init; }

    [JsonPropertyName("namespace")]
    public string? Namespace { get; init; }

    [JsonPropertyName("containerId")]
    public required string ContainerId { get; init; }

    [JsonPropertyName("netns")]
    public string? Netns { get; init; }

    [JsonPropertyName("ifname")]
    public required string IfName { get; init; }

    [JsonPropertyName("ips")]
    public IReadOnlyList<string> Ips { get; init; } = [];
}

internal sealed record AgentAttachment
{
    [JsonPropertyName("containerId")]
    public required string ContainerId { get; init; }

    [JsonPropertyName("ifname")]
    public required string IfName { get; init; }
}

internal sealed record AgentResponse
{
    [JsonPropertyName("status")]
    public string? Status { get; init; }

    [JsonPropertyName("message")]
    public string? Message { get; init; }
}

/// <summary>The response statuses defined by protocol version 1.</summary>
internal static class AgentStatus
{
    public const string Captured = "captured";
    public const string NotEnrolled = "not-enrolled";
    public const string Removed = "removed";
    public const string Ready = "ready";
    public const string Error = "error";
}
