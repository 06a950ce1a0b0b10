using System.Buffers;
using System.Collections.Immutable;
using System.Text;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>
/// API server JSON to the <see cref="YamlMappingNode"/> tree a <see cref="KubeObject"/> carries.
/// </summary>
/// <remarks>
/// <para>The tree is the one YamlDotNet's own parser builds from the same JSON text (a <c>.json</c> manifest read by
/// the file source): strings become double-quoted scalars, numbers, booleans and null plain scalars with their JSON
/// spelling, objects and arrays flow-style nodes. So the translator sees one shape whichever source an object came
/// from, and can tell the string <c>"80"</c> from the number <c>80</c> by the scalar's style.</para>
/// <para>Built straight from <see cref="Utf8JsonReader"/> rather than by handing the text to YamlDotNet: the
/// <c>KubeJsonBenchmarks</c> in perf/ measure both on a 10,000-pod list. Every field is kept, known or not (the
/// translator validates), except <c>metadata.managedFields</c>.</para>
/// </remarks>
internal static partial class KubeJson
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 256 };

    /// <summary>Bound on the per-thread key cache (schema field names plus label and annotation keys).</summary>
    private const int MaxInternedKeys = 4096;

    [ThreadStatic]
    private static Dictionary<string, string>? t_keys;

    private static readonly YamlScalarNode ApiVersionKey = new("apiVersion") { Style = ScalarStyle.DoubleQuoted };
    private static readonly YamlScalarNode KindKey = new("kind") { Style = ScalarStyle.DoubleQuoted };

    /// <summary>Parses one JSON value that must be an object.</summary>
    /// <exception cref="JsonException">Not JSON, or not an object.</exception>
    public static YamlMappingNode ParseObject(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        return ReadTopObject(ref reader);
    }

    /// <inheritdoc cref="ParseObject(ReadOnlySpan{byte})"/>
    public static YamlMappingNode ParseObject(ReadOnlySequence<byte> json)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        return ReadTopObject(ref reader);
    }

    private static YamlMappingNode ReadTopObject(ref Utf8JsonReader reader)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("expected a JSON object");
        }
        YamlMappingNode node = ReadMapping(ref reader, metadata: false);
        if (reader.Read())
        {
            throw new JsonException($"unexpected {reader.TokenType} after the object");
        }
        return node;
    }

    /// <summary>Reads the value the reader is positioned on (after <see cref="Utf8JsonReader.Read"/> returned it).</summary>
    private static YamlNode ReadValue(ref Utf8JsonReader reader, bool metadata = false) => reader.TokenType switch
    {
        JsonTokenType.StartObject => ReadMapping(ref reader, metadata),
        JsonTokenType.StartArray => ReadSequence(ref reader),
        JsonTokenType.String => new YamlScalarNode(reader.GetString()) { Style = ScalarStyle.DoubleQuoted },
        JsonTokenType.Number => new YamlScalarNode(Raw(ref reader)) { Style = ScalarStyle.Plain },
        JsonTokenType.True => new YamlScalarNode("true") { Style = ScalarStyle.Plain },
        JsonTokenType.False => new YamlScalarNode("false") { Style = ScalarStyle.Plain },
        JsonTokenType.Null => new YamlScalarNode("null") { Style = ScalarStyle.Plain },
        _ => throw new JsonException($"unexpected {reader.TokenType}"),
    };

    private static YamlMappingNode ReadMapping(ref Utf8JsonReader reader, bool metadata)
    {
        var node = new YamlMappingNode { Style = MappingStyle.Flow };
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            if (metadata && reader.ValueTextEquals("managedFields"u8))
            {
                // Server-side apply bookkeeping: often a third of an object's size, never read by the mesh
                // (client-go informers strip it the same way).
                reader.Read();
                reader.Skip();
                continue;
            }
            bool isMetadata = reader.ValueTextEquals("metadata"u8);
            var key = new YamlScalarNode(Key(ref reader)) { Style = ScalarStyle.DoubleQuoted };
            reader.Read();
            YamlNode value = ReadValue(ref reader, isMetadata);
            // A duplicate key is legal JSON (last one wins, as Go's decoder does); YamlDotNet's Add would throw.
            node.Children[key] = value;
        }
        return node;
    }

    /// <summary>Property names repeat in every object ("metadata", "name", label keys): one string instance each.</summary>
    private static string Key(ref Utf8JsonReader reader)
    {
        const int MaxLength = 64;
        if (reader.HasValueSequence || reader.ValueSpan.Length > MaxLength)
        {
            return reader.GetString()!;
        }
        Span<char> chars = stackalloc char[MaxLength];
        int length = reader.CopyString(chars);
        Dictionary<string, string> keys = t_keys ??= new Dictionary<string, string>(StringComparer.Ordinal);
        if (keys.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(chars[..length], out string? key))
        {
            return key;
        }
        key = new string(chars[..length]);
        if (keys.Count < MaxInternedKeys)
        {
            keys[key] = key;
        }
        return key;
    }

    private static YamlSequenceNode ReadSequence(ref Utf8JsonReader reader)
    {
        var node = new YamlSequenceNode { Style = SequenceStyle.Flow };
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            node.Children.Add(ReadValue(ref reader));
        }
        return node;
    }

    private static string Raw(ref Utf8JsonReader reader) =>
        reader.HasValueSequence ? Encoding.UTF8.GetString(reader.ValueSequence) : Encoding.UTF8.GetString(reader.ValueSpan);

    /// <summary>
    /// The <see cref="KubeObject"/> for one object of <paramref name="resource"/>, holding the object as compact JSON.
    /// Items of a built-in list
    /// (PodList) come without apiVersion and kind; they are filled in from the resource, in the body too, so the
    /// translator sees what a manifest would have.
    /// </summary>
    /// <exception cref="FormatException">No metadata.name (nothing to key the object by).</exception>
    public static KubeObject ToKubeObject(YamlMappingNode body, KubeResource resource)
    {
        string? apiVersion = Scalar(body, "apiVersion");
        if (string.IsNullOrEmpty(apiVersion))
        {
            apiVersion = resource.ApiVersion;
            body.Children[ApiVersionKey] = new YamlScalarNode(apiVersion) { Style = ScalarStyle.DoubleQuoted };
        }
        string? kind = Scalar(body, "kind");
        if (string.IsNullOrEmpty(kind))
        {
            kind = resource.Kind;
            body.Children[KindKey] = new YamlScalarNode(kind) { Style = ScalarStyle.DoubleQuoted };
        }
        YamlMappingNode? metadata = Child(body, "metadata") as YamlMappingNode;
        string? name = metadata is null ? null : Scalar(metadata, "name");
        if (string.IsNullOrEmpty(name))
        {
            throw new FormatException($"a {kind} without metadata.name");
        }
        // Kept as compact JSON, not as this tree (about ten times the size): see KubeObject.
        return KubeObject.FromJson(apiVersion, kind, Scalar(metadata!, "namespace") ?? "", name, ToJson(body)) with
        {
            Uid = Scalar(metadata!, "uid") ?? "",
            ResourceVersion = Scalar(metadata!, "resourceVersion") ?? "",
            Labels = StringMap(Child(metadata!, "labels")),
            Annotations = StringMap(Child(metadata!, "annotations")),
        };
    }

    /// <summary>metadata.resourceVersion of an object or a list, or null.</summary>
    public static string? ResourceVersionOf(YamlMappingNode body) =>
        Child(body, "metadata") is YamlMappingNode metadata ? Scalar(metadata, "resourceVersion") : null;

    public static YamlNode? Child(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out YamlNode? value) ? value : null;

    /// <summary>The scalar under <paramref name="key"/>; null when absent, JSON null or not a scalar.</summary>
    public static string? Scalar(YamlMappingNode node, string key) =>
        Child(node, key) is YamlScalarNode { Value: string v } s && !(s.Style == ScalarStyle.Plain && v == "null") ? v : null;

    private static ImmutableDictionary<string, string> StringMap(YamlNode? node)
    {
        if (node is not YamlMappingNode map || map.Children.Count == 0)
        {
            return ImmutableDictionary<string, string>.Empty;
        }
        ImmutableDictionary<string, string>.Builder builder = ImmutableDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach ((YamlNode k, YamlNode v) in map.Children)
        {
            if (k is YamlScalarNode { Value: string key } && v is YamlScalarNode { Value: string value })
            {
                builder[key] = value;
            }
        }
        return builder.ToImmutable();
    }
}
