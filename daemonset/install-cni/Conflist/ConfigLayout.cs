using System.Collections.Immutable;
using System.Text.Json;

namespace Ambient.InstallCni.Conflist;

/// <summary>One plugin object of a conflist: its bytes are <c>file[Start..End]</c>.</summary>
internal readonly record struct PluginSpan(int Start, int End, string Type)
{
    public bool IsOurs => Type == PluginEntry.PluginType;
}

/// <summary>
/// Where the parts of one CNI network configuration file are, as byte offsets into the file. Edits splice new
/// bytes in at these offsets, so every byte of the file we do not own stays exactly as the primary CNI wrote it
/// (formatting, key order, number spelling, unknown keys).
/// </summary>
internal sealed record ConfigLayout
{
    /// <summary>True for a network configuration list (a <c>plugins</c> array); false for a single-plugin <c>.conf</c>.</summary>
    public required bool IsList { get; init; }

    /// <summary>The root object's bytes: <c>file[RootStart..RootEnd]</c>.</summary>
    public required int RootStart { get; init; }
    public required int RootEnd { get; init; }

    /// <summary>Raw JSON (with quotes) of the root's <c>cniVersion</c> and <c>name</c>.</summary>
    public required string CniVersionJson { get; init; }
    public required string NameJson { get; init; }

    /// <summary>Offset of the list's <c>[</c> (lists only).</summary>
    public int ArrayOpen { get; init; } = -1;

    public ImmutableArray<PluginSpan> Plugins { get; init; } = [];

    /// <summary>
    /// Reads a config file: a network configuration list when <paramref name="isList"/> (a <c>.conflist</c>; runtimes
    /// go by the extension), else a single plugin's config. Anything a runtime would reject, or (with <paramref name="requirePrimary"/>)
    /// a file with no primary plugin to chain after, is a <see cref="ConfigFormatException"/> whose message says
    /// what to fix.
    /// </summary>
    public static ConfigLayout Parse(ReadOnlyMemory<byte> file, bool isList, bool requirePrimary = true)
    {
        JsonDocument doc;
        try
        {
            // A key twice in one object means two programs disagree about the file; refuse rather than guess.
            doc = JsonDocument.Parse(file, new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException ex)
        {
            throw new ConfigFormatException(
                $"is not valid JSON (line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1}): malformed JSON or a key that appears twice in one object");
        }

        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ConfigFormatException($"is a JSON {Describe(root.ValueKind)}, not an object");
            }

            string cniVersion = RequiredString(root, "cniVersion");
            string name = RequiredString(root, "name");
            bool hasPlugins = root.TryGetProperty("plugins", out JsonElement plugins);
            var types = ImmutableArray.CreateBuilder<string>();
            if (hasPlugins != isList)
            {
                throw new ConfigFormatException(isList
                    ? "has no \"plugins\" list, which a .conflist must have"
                    : "has a \"plugins\" list, but runtimes read a file without the .conflist extension as one plugin's config; rename it to .conflist");
            }

            if (isList)
            {
                if (plugins.ValueKind != JsonValueKind.Array)
                {
                    throw new ConfigFormatException($"has \"plugins\" of type {Describe(plugins.ValueKind)}; it must be an array of plugin objects");
                }

                int i = 0;
                foreach (JsonElement plugin in plugins.EnumerateArray())
                {
                    if (plugin.ValueKind != JsonValueKind.Object)
                    {
                        throw new ConfigFormatException($"has plugins[{i}] of type {Describe(plugin.ValueKind)}; every plugin must be an object");
                    }

                    types.Add(RequiredString(plugin, "type", $"plugins[{i}]."));
                    i++;
                }

                if (requirePrimary && types.All(t => t == PluginEntry.PluginType))
                {
                    throw new ConfigFormatException("has no plugin besides ambient-cni: there is no primary CNI plugin to chain after");
                }
            }
            else if (RequiredString(root, "type") == PluginEntry.PluginType && requirePrimary)
            {
                throw new ConfigFormatException("is an ambient-cni config on its own: there is no primary CNI plugin to chain after");
            }

            var layout = Locate(file.Span, isList, types.ToImmutable());
            return layout with
            {
                CniVersionJson = root.GetProperty("cniVersion").GetRawText(),
                NameJson = root.GetProperty("name").GetRawText(),
            };
        }
    }

    /// <summary>The byte offsets, found with a reader over the already validated file.</summary>
    private static ConfigLayout Locate(ReadOnlySpan<byte> file, bool isList, ImmutableArray<string> types)
    {
        var reader = new Utf8JsonReader(file, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        reader.Read();
        int rootStart = (int)reader.TokenStartIndex;
        int open = -1;
        var spans = ImmutableArray.CreateBuilder<PluginSpan>(types.Length);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            bool isPlugins = reader.ValueTextEquals("plugins"u8);
            reader.Read();
            if (!isPlugins)
            {
                reader.Skip();
                continue;
            }

            open = (int)reader.TokenStartIndex;
            while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
            {
                int start = (int)reader.TokenStartIndex;
                reader.Skip();
                spans.Add(new PluginSpan(start, (int)reader.BytesConsumed, types[spans.Count]));
            }
        }

        return new ConfigLayout
        {
            IsList = isList,
            RootStart = rootStart,
            RootEnd = (int)reader.BytesConsumed,
            CniVersionJson = "",
            NameJson = "",
            ArrayOpen = open,
            Plugins = spans.ToImmutable(),
        };
    }

    private static string RequiredString(JsonElement obj, string key, string prefix = "")
    {
        if (!obj.TryGetProperty(key, out JsonElement value))
        {
            throw new ConfigFormatException($"has no \"{prefix}{key}\"; a container runtime rejects it without one");
        }

        if (value.ValueKind != JsonValueKind.String || value.GetString() is not { Length: > 0 } text)
        {
            throw new ConfigFormatException($"has \"{prefix}{key}\" of type {Describe(value.ValueKind)}; it must be a non-empty string");
        }

        return text;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "value",
    };
}

/// <summary>A CNI config file the installer will not edit; the message completes "FILE ...".</summary>
internal sealed class ConfigFormatException(string message) : Exception(message);
