using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Ambient.Cni;

/// <summary>
/// Source-generated metadata for every type the plugin (de)serializes, so NativeAOT needs no reflection.
/// </summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = JsonCommentHandling.Disallow,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(AgentRequest))]
[JsonSerializable(typeof(AgentResponse))]
[JsonSerializable(typeof(PluginConfigDto))]
[JsonSerializable(typeof(EnrollmentDto))]
[JsonSerializable(typeof(CniErrorResult))]
[JsonSerializable(typeof(CniVersionResult))]
internal sealed partial class JsonContext : JsonSerializerContext
{
    // Keep text such as ' < é readable in results and logs; nothing here is embedded in HTML.
    private static readonly JsonWriterOptions RelaxedWriter = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Serializes one value as a single newline-terminated line of UTF-8 JSON.</summary>
    public static byte[] ToLine<T>(T value, JsonTypeInfo<T> typeInfo)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, RelaxedWriter))
        {
            JsonSerializer.Serialize(writer, value, typeInfo);
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }
}

/// <summary>The error object of SPEC.md "Error" (printed on stdout with a non-zero exit).</summary>
internal sealed record CniErrorResult(
    [property: JsonPropertyName("cniVersion")] string CniVersion,
    [property: JsonPropertyName("code")] uint Code,
    [property: JsonPropertyName("msg")] string Msg,
    [property: JsonPropertyName("details")] string? Details);

/// <summary>The VERSION result of SPEC.md.</summary>
internal sealed record CniVersionResult(
    [property: JsonPropertyName("cniVersion")] string CniVersion,
    [property: JsonPropertyName("supportedVersions")] IReadOnlyList<string> SupportedVersions);
