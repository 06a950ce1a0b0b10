extern alias KubeFull;

using System.Text.Json.Nodes;
using KubeFull::k8s;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ambient.Daemonset.Tests.Manifests;

/// <summary>A manifest that does not fit the Kubernetes API types; the message names the document, field and line.</summary>
public sealed class SchemaException(string message) : Exception(message);

/// <summary>
/// Checks manifests against the Kubernetes API's own types (KubernetesClient's models, generated from the
/// API's OpenAPI spec), in two independent ways:
/// 1. a strict load: every key must be a property of its model type, case-sensitively, with a value of the
///    property's type; an apiVersion/kind pair that is no built-in type is refused;
/// 2. a round trip: the typed object serialized back must hold every key and scalar of the input, so nothing
///    was dropped or coerced on the way in.
/// </summary>
public static class KubernetesSchema
{
    /// <summary>Every document of <paramref name="yaml"/> as its model type (V1DaemonSet, V1ClusterRole, ...).</summary>
    public static IReadOnlyList<object> Load(string yaml, string fileName)
    {
        List<object> objects;
        try
        {
            objects = KubernetesYaml.LoadAllFromString(yaml, typeMap: null, strict: true);
        }
        catch (YamlException ex)
        {
            throw new SchemaException($"{fileName}:{ex.Start.Line}:{ex.Start.Column}: {ex.Message}{(ex.InnerException is { } inner ? $" ({inner.Message})" : "")}");
        }
        catch (KeyNotFoundException ex)
        {
            throw new SchemaException($"{fileName}: a document's apiVersion/kind is not a Kubernetes API type: {ex.Message}");
        }

        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var documents = stream.Documents.Where(d => d.RootNode is not YamlScalarNode { Value: null or "" }).ToList();
        if (documents.Count != objects.Count)
        {
            throw new SchemaException($"{fileName}: {documents.Count} YAML documents but {objects.Count} objects loaded");
        }

        for (int i = 0; i < objects.Count; i++)
        {
            var typed = JsonNode.Parse(KubernetesJson.Serialize(objects[i]));
            Compare(documents[i].RootNode, typed, $"{fileName} document {i + 1} ({objects[i].GetType().Name})", "");
        }

        return objects;
    }

    private static void Compare(YamlNode input, JsonNode? output, string doc, string path)
    {
        switch (input)
        {
            case YamlMappingNode map:
                if (output is not JsonObject obj)
                {
                    throw Lost(doc, path, input, "an object");
                }

                foreach (var (key, value) in map.Children)
                {
                    string name = ((YamlScalarNode)key).Value!;
                    if (!obj.TryGetPropertyValue(name, out var child))
                    {
                        throw Lost(doc, $"{path}.{name}", key, "a field of its type");
                    }

                    Compare(value, child, doc, $"{path}.{name}");
                }

                break;
            case YamlSequenceNode seq:
                if (output is not JsonArray arr || arr.Count != seq.Children.Count)
                {
                    throw Lost(doc, path, input, $"a list of {seq.Children.Count}");
                }

                for (int i = 0; i < seq.Children.Count; i++)
                {
                    Compare(seq.Children[i], arr[i], doc, $"{path}[{i}]");
                }

                break;
            case YamlScalarNode scalar:
                string expected = scalar.Value ?? "";
                string actual = output is null ? "" : output is JsonValue v && v.TryGetValue<string>(out var s) ? s : output.ToJsonString();
                if (!string.Equals(expected, actual, StringComparison.OrdinalIgnoreCase) && !(expected == "~" && output is null))
                {
                    throw new SchemaException($"{doc}: {path} (line {scalar.Start.Line}) is '{expected}' in the file but '{actual}' once read as its type");
                }

                break;
        }
    }

    private static SchemaException Lost(string doc, string path, YamlNode at, string what) =>
        new($"{doc}: {path} (line {at.Start.Line}) did not survive as {what} of the Kubernetes type");
}
