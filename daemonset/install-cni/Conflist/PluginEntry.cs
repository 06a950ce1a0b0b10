using System.Collections.Immutable;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ambient.InstallCni.Conflist;

/// <summary>
/// The ambient-cni entry the installer keeps as the last plugin of the primary conflist. Its keys are the
/// plugin's configuration (cni-plugin/README.md); the paths are paths on the host, where the runtime runs the
/// plugin, not in the installer's container.
/// </summary>
internal sealed record PluginEntry
{
    public const string PluginType = "ambient-cni";

    public required string AgentSocket { get; init; }
    public required string EnrollmentFile { get; init; }
    public required ImmutableArray<string> ExcludeNamespaces { get; init; }
    public required double AgentTimeoutSeconds { get; init; }
    public required string LogLevel { get; init; }
    public string? LogFile { get; init; }

    /// <summary>
    /// The entry as JSON. Indented, every line after the first starts with <paramref name="indent"/>, so the
    /// entry lines up with the plugins around it; compact when the file keeps its plugins on one line.
    /// </summary>
    public string Render(string? indent)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indent is not null, NewLine = "\n" }))
        {
            w.WriteStartObject();
            w.WriteString("type", PluginType);
            w.WriteString("agentSocket", AgentSocket);
            w.WriteString("enrollmentFile", EnrollmentFile);
            w.WriteStartArray("excludeNamespaces");
            foreach (string ns in ExcludeNamespaces)
            {
                w.WriteStringValue(ns);
            }

            w.WriteEndArray();
            w.WriteNumber("agentTimeoutSeconds", AgentTimeoutSeconds);
            w.WriteString("logLevel", LogLevel);
            if (LogFile is not null)
            {
                w.WriteString("logFile", LogFile);
            }

            w.WriteEndObject();
        }

        string json = Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        return indent is { Length: > 0 } ? json.Replace("\n", "\n" + indent, StringComparison.Ordinal) : json;
    }

    /// <summary>True when <paramref name="json"/> (an existing entry) says the same as this one, whatever its formatting.</summary>
    public bool SameAs(ReadOnlySpan<byte> json)
    {
        JsonNode? existing;
        try
        {
            existing = JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            return false;
        }

        return JsonNode.DeepEquals(existing, JsonNode.Parse(Render(null)));
    }
}
