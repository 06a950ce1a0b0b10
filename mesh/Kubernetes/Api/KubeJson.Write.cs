using System.Buffers;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Kubernetes.Api;

internal static partial class KubeJson
{
    /// <summary>
    /// A tree this class built, back to compact JSON: double-quoted scalars are strings, plain ones the JSON literals
    /// they were read from (numbers, true, false, null). <see cref="ParseObject(ReadOnlySpan{byte})"/> of the result is
    /// the same tree, which is what lets an API object be kept as JSON (see <see cref="KubeObject"/>).
    /// </summary>
    public static byte[] ToJson(YamlMappingNode body)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            Write(writer, body);
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void Write(Utf8JsonWriter w, YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode map:
                w.WriteStartObject();
                foreach ((YamlNode key, YamlNode value) in map.Children)
                {
                    w.WritePropertyName(((YamlScalarNode)key).Value ?? "");
                    Write(w, value);
                }
                w.WriteEndObject();
                break;
            case YamlSequenceNode seq:
                w.WriteStartArray();
                foreach (YamlNode item in seq.Children)
                {
                    Write(w, item);
                }
                w.WriteEndArray();
                break;
            case YamlScalarNode { Style: ScalarStyle.Plain, Value: { } literal }:
                // A number, true, false or null exactly as the server spelled it.
                w.WriteRawValue(literal, skipInputValidation: true);
                break;
            case YamlScalarNode scalar:
                w.WriteStringValue(scalar.Value);
                break;
            default:
                throw new InvalidOperationException($"a {node.GetType().Name} in a tree built from JSON");
        }
    }
}
