using System.Collections.Immutable;
using Ambient.Mesh.Config;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes;

/// <summary>What <see cref="ManifestReader"/> read: the objects, and every problem with its file and line.</summary>
/// <remarks>
/// An object with an error is left out; the others of the same file are kept (a YAML syntax error loses the whole
/// file, since the parser cannot resynchronise). A file or directory holding no object at all is a warning, never
/// silence: the file source must not read "nothing" as "the mesh is empty" by accident.
/// </remarks>
public sealed record ManifestReadResult(ImmutableArray<KubeObject> Objects, ImmutableArray<ConfigError> Errors, ImmutableArray<ConfigError> Warnings)
{
    public bool Ok => Errors.IsEmpty;

    /// <summary>The files that were read (directories expanded), in reading order: what a file watcher should watch.</summary>
    public ImmutableArray<string> Files { get; init; } = [];
}

/// <summary>
/// Reads Kubernetes manifests, the YAML or JSON a user would <c>kubectl apply</c>, into <see cref="KubeObject"/>s:
/// multi-document YAML (<c>---</c>), JSON files, and <c>kind: List</c> (or <c>PodList</c>, ...) with <c>items</c>.
/// A path is a file, or a directory whose <c>.yaml</c>/<c>.yml</c>/<c>.json</c> files are read in name order
/// (not recursive: like <c>kubectl apply -f DIR</c> without <c>-R</c>).
/// </summary>
public static class ManifestReader
{
    private static readonly string[] Extensions = [".yaml", ".yml", ".json"];

    /// <summary>Reads every path (files, or directories of manifest files). Never throws for bad input.</summary>
    public static ManifestReadResult Read(IEnumerable<string> paths)
    {
        var objects = ImmutableArray.CreateBuilder<KubeObject>();
        var errors = ImmutableArray.CreateBuilder<ConfigError>();
        var warnings = ImmutableArray.CreateBuilder<ConfigError>();
        var files = ImmutableArray.CreateBuilder<string>();
        var seen = new Dictionary<KubeObjectKey, KubeObject>();
        foreach (string path in paths)
        {
            if (Directory.Exists(path))
            {
                List<string> inDir;
                try
                {
                    inDir = ManifestFiles(path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    errors.Add(new ConfigError(path, 0, 0, "", $"cannot list manifest directory: {e.Message}"));
                    continue;
                }
                if (inDir.Count == 0)
                {
                    warnings.Add(new ConfigError(path, 0, 0, "", "no .yaml, .yml or .json files in this directory (subdirectories are not read)"));
                }
                foreach (string file in inDir)
                {
                    files.Add(file);
                    ReadFileInto(file, objects, errors, warnings, seen);
                }
            }
            else
            {
                files.Add(path);
                ReadFileInto(path, objects, errors, warnings, seen);
            }
        }
        return new ManifestReadResult(objects.ToImmutable(), errors.ToImmutable(), warnings.ToImmutable()) { Files = files.ToImmutable() };
    }

    /// <summary>The manifest files of a directory (not recursive), in ordinal name order so reading is deterministic.</summary>
    public static List<string> ManifestFiles(string directory)
    {
        var list = new List<string>();
        foreach (string f in Directory.EnumerateFiles(directory))
        {
            if (IsManifestFile(f))
            {
                list.Add(f);
            }
        }
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    /// <summary>Whether a file name has a manifest extension (.yaml, .yml, .json); editor swap files and the like are not.</summary>
    public static bool IsManifestFile(string path)
    {
        string name = Path.GetFileName(path);
        if (name.StartsWith('.'))
        {
            return false; // .#emacs locks, .swp and friends
        }
        foreach (string ext in Extensions)
        {
            if (name.EndsWith(ext, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Parses manifest text (one file's content); <paramref name="fileName"/> names it in errors and in <see cref="KubeObject.File"/>.</summary>
    public static ManifestReadResult Parse(string text, string fileName)
    {
        var objects = ImmutableArray.CreateBuilder<KubeObject>();
        var errors = ImmutableArray.CreateBuilder<ConfigError>();
        var warnings = ImmutableArray.CreateBuilder<ConfigError>();
        ParseInto(text, fileName, objects, errors, warnings, new Dictionary<KubeObjectKey, KubeObject>());
        return new ManifestReadResult(objects.ToImmutable(), errors.ToImmutable(), warnings.ToImmutable()) { Files = [fileName] };
    }

    private static void ReadFileInto(string file, ImmutableArray<KubeObject>.Builder objects, ImmutableArray<ConfigError>.Builder errors,
        ImmutableArray<ConfigError>.Builder warnings, Dictionary<KubeObjectKey, KubeObject> seen)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            string why = e switch
            {
                FileNotFoundException or DirectoryNotFoundException => "no such file or directory",
                UnauthorizedAccessException => "permission denied",
                _ => e.Message,
            };
            errors.Add(new ConfigError(file, 0, 0, "", $"cannot read manifest: {why}"));
            return;
        }
        ParseInto(text, file, objects, errors, warnings, seen);
    }

    private static void ParseInto(string text, string file, ImmutableArray<KubeObject>.Builder objects, ImmutableArray<ConfigError>.Builder errors,
        ImmutableArray<ConfigError>.Builder warnings, Dictionary<KubeObjectKey, KubeObject> seen)
    {
        if (file.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            // JSON is YAML, except that YAML refuses tabs as indentation. In valid JSON a raw tab can only be
            // whitespace between tokens (inside strings it must be escaped), so a space in its place is the
            // same document, with every line and column where it was.
            text = text.Replace('\t', ' ');
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            errors.Add(new ConfigError(file, (int)e.Start.Line, (int)e.Start.Column, "", $"YAML syntax error: {InnermostMessage(e)}"));
            return;
        }
        var r = new YamlConfigReader(file);
        int before = objects.Count;
        for (int d = 0; d < stream.Documents.Count; d++)
        {
            YamlNode root = stream.Documents[d].RootNode;
            if (IsNull(root))
            {
                continue; // an empty document: "---" at the end of a file, or only comments
            }
            string path = stream.Documents.Count > 1 ? $"document[{d}]" : "";
            ReadObject(r, root, path, file, objects, seen, listApiVersion: null, listItemKind: null);
        }
        errors.AddRange(r.Errors);
        warnings.AddRange(r.Warnings);
        if (objects.Count == before && !r.HasErrors)
        {
            warnings.Add(new ConfigError(file, 0, 0, "", "no Kubernetes objects in this file"));
        }
    }

    private static void ReadObject(YamlConfigReader r, YamlNode node, string path, string file, ImmutableArray<KubeObject>.Builder objects,
        Dictionary<KubeObjectKey, KubeObject> seen, string? listApiVersion, string? listItemKind)
    {
        if (node is not YamlMappingNode map)
        {
            r.Error(node, path, $"expected a Kubernetes object (apiVersion, kind, metadata, ...), found {Describe(node)}");
            return;
        }
        string? apiVersion = KubeYaml.Str(r, map, "apiVersion", path) ?? listApiVersion;
        string? kind = KubeYaml.Str(r, map, "kind", path) ?? listItemKind;
        bool ok = true;
        if (string.IsNullOrEmpty(apiVersion))
        {
            r.Error(map, Child(path, "apiVersion"), "required: every object needs apiVersion (e.g. v1, apps/v1, security.istio.io/v1)");
            ok = false;
        }
        if (string.IsNullOrEmpty(kind))
        {
            r.Error(map, Child(path, "kind"), "required: every object needs kind (e.g. Pod, Service, AuthorizationPolicy)");
            ok = false;
        }
        if (ok && kind!.EndsWith("List", StringComparison.Ordinal) && KubeYaml.Get(map, "items") is { } itemsNode)
        {
            // kubectl's "kind: List", or a typed list (PodList) whose items may leave out apiVersion and kind.
            YamlSequenceNode? items = r.Sequence(itemsNode, Child(path, "items"));
            string? itemKind = kind == "List" ? null : kind[..^"List".Length];
            string? itemApiVersion = kind == "List" ? null : apiVersion;
            for (int i = 0; items is not null && i < items.Children.Count; i++)
            {
                if (IsNull(items.Children[i]))
                {
                    continue;
                }
                ReadObject(r, items.Children[i], Index(Child(path, "items"), i), file, objects, seen, itemApiVersion, itemKind);
            }
            return;
        }
        int errorsBefore = r.Errors.Length;
        YamlMappingNode? metadata = KubeYaml.Map(r, map, "metadata", path);
        string metaPath = Child(path, "metadata");
        string? name = KubeYaml.Str(r, metadata, "name", metaPath);
        if (string.IsNullOrEmpty(name))
        {
            r.Error(metadata ?? map, Child(metaPath, "name"),
                KubeYaml.Get(metadata, "generateName") is not null
                    ? "required: metadata.name (generateName needs an API server to pick the name; give the object a name)"
                    : "required: every object needs metadata.name");
            ok = false;
        }
        if (!ok)
        {
            return;
        }
        string ns = KubeYaml.Str(r, metadata, "namespace", metaPath) ?? "";
        var obj = new KubeObject(apiVersion!, kind!, ns, name!, map, file)
        {
            Uid = KubeYaml.Str(r, metadata, "uid", metaPath) ?? "",
            ResourceVersion = KubeYaml.Str(r, metadata, "resourceVersion", metaPath) ?? "",
            Labels = KubeYaml.Get(metadata, "labels") is { } l ? KubeYaml.StringMap(r, l, Child(metaPath, "labels")) : ImmutableDictionary<string, string>.Empty,
            Annotations = KubeYaml.Get(metadata, "annotations") is { } a ? KubeYaml.StringMap(r, a, Child(metaPath, "annotations")) : ImmutableDictionary<string, string>.Empty,
        };
        if (r.Errors.Length > errorsBefore)
        {
            return; // a malformed label or uid: the object is left out, like one kubectl would refuse
        }
        if (seen.TryGetValue(obj.Key, out KubeObject? first))
        {
            // kubectl apply would make the later one win; in a manifest set two definitions are a copy-paste slip.
            r.Error(map, path, $"{obj.Describe()} is defined twice (first in {first.File}:{first.Body.Start.Line}); the second is ignored");
            return;
        }
        seen.Add(obj.Key, obj);
        objects.Add(obj);
    }

    private static string InnermostMessage(YamlException e)
    {
        Exception inner = e;
        while (inner.InnerException is YamlException next)
        {
            inner = next;
        }
        string m = inner.Message;
        int cut = m.LastIndexOf("): ", StringComparison.Ordinal);
        return cut >= 0 && m.StartsWith('(') ? m[(cut + 3)..] : m;
    }
}
