using System.Collections.Immutable;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Config;

public sealed record ConfigLoadResult(MeshConfig? Config, ImmutableArray<ConfigError> Errors)
{
    public bool Ok => Config is not null && Errors.IsEmpty;

    /// <summary>
    /// Problems that do not stop the config from loading (an unknown field a newer Istio may have added, a
    /// workload listing a service that is not defined). The agent should log them.
    /// </summary>
    public ImmutableArray<ConfigError> Warnings { get; init; } = [];
}

/// <summary>
/// Reads the agent's YAML config: Istio ztunnel's local config unchanged plus the project keys.
/// Never throws for bad input: every problem becomes a <see cref="ConfigError"/> naming field and line.
/// </summary>
/// <remarks>See <c>mesh/Config/example-config.yaml</c> for every key.</remarks>
public static class ConfigLoader
{
    public static ConfigLoadResult LoadFile(string path)
    {
        if (Directory.Exists(path))
        {
            // Opening a folder fails with EACCES/EISDIR, which .NET reports as "access denied": name the real problem.
            return new ConfigLoadResult(null, [new ConfigError(path, 0, 0, "", "cannot read config file: it is a folder, not a file (give the path of the YAML file)")]);
        }
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            string why = e switch
            {
                FileNotFoundException or DirectoryNotFoundException => "file not found",
                UnauthorizedAccessException => "permission denied",
                _ => e.Message,
            };
            return new ConfigLoadResult(null, [new ConfigError(path, 0, 0, "", $"cannot read config file: {why}")]);
        }
        return Parse(text, path);
    }

    public static ConfigLoadResult Parse(string yaml, string fileName)
    {
        var reader = new YamlConfigReader(fileName);
        MeshConfig? config = null;
        try
        {
            config = ParseCore(yaml, fileName, reader);
        }
        catch (YamlException e)
        {
            // YamlDotNet reports syntax errors (and duplicate keys) with a position; keep only its own sentence.
            return Fail(reader, new ConfigError(fileName, (int)e.Start.Line, (int)e.Start.Column, "", $"YAML syntax error: {InnermostMessage(e)}"));
        }
        catch (Exception e)
        {
            // A bug in the loader must not take the agent down on a config edit; report it like bad input.
            return Fail(reader, new ConfigError(fileName, 0, 0, "", $"internal error while loading config: {e.GetType().Name}: {e.Message}"));
        }
        return reader.HasErrors
            ? new ConfigLoadResult(null, reader.Errors) { Warnings = reader.Warnings }
            : new ConfigLoadResult(config, []) { Warnings = reader.Warnings };
    }

    internal const string EmptyFileMessage =
        "the config file is empty (no YAML document, or only comments); a truncated or half-written file looks the same, " +
        "so it is refused; for an empty mesh on purpose write {} (or workloads: [])";

    private static ConfigLoadResult Fail(YamlConfigReader reader, ConfigError error) =>
        new(null, [error]) { Warnings = reader.Warnings };

    private static string InnermostMessage(YamlException e)
    {
        Exception inner = e;
        while (inner.InnerException is YamlException next)
        {
            inner = next;
        }
        string m = inner.Message;
        // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the position is already in the error.
        int cut = m.LastIndexOf("): ", StringComparison.Ordinal);
        return cut >= 0 && m.StartsWith('(') ? m[(cut + 3)..] : m;
    }

    private static MeshConfig? ParseCore(string yaml, string fileName, YamlConfigReader reader)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        if (stream.Documents.Count == 0 || YamlConfigReader.IsNull(stream.Documents[0].RootNode))
        {
            // Empty (or only comments) is what a truncated or half-written file looks like: applying it would drop
            // every workload and policy at once, so it is an error. An empty mesh on purpose is written "{}".
            reader.Error(null, "", EmptyFileMessage);
            return null;
        }
        if (stream.Documents.Count > 1)
        {
            reader.Error(stream.Documents[1].RootNode, "", "the file has more than one YAML document ('---'); put everything in one");
            return null;
        }
        string? baseDir = Path.GetDirectoryName(fileName);
        var parser = new ConfigParser(reader, string.IsNullOrEmpty(baseDir) ? null : baseDir);
        return parser.Parse(stream.Documents[0].RootNode, fileName);
    }
}
