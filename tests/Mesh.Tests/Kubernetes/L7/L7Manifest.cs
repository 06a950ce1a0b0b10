using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.L7;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

/// <summary>Reads a one-document manifest the way a source would and runs it through <see cref="L7Kinds"/>.</summary>
internal static class L7Manifest
{
    public const string File = "routes.yaml";

    public sealed record Result(MeshObject? Object, ImmutableArray<ConfigError> Errors, ImmutableArray<ConfigError> Warnings);

    public static Result Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var body = (YamlMappingNode)stream.Documents[0].RootNode;
        string apiVersion = Scalar(body, "apiVersion");
        string kind = Scalar(body, "kind");
        var metadata = (YamlMappingNode)body.Children[new YamlScalarNode("metadata")];
        string name = Scalar(metadata, "name");
        string ns = metadata.Children.ContainsKey(new YamlScalarNode("namespace")) ? Scalar(metadata, "namespace") : "default";
        var obj = new KubeObject(apiVersion, kind, ns, name, body, File);
        Assert.True(L7Kinds.Handles(obj.Group, obj.Kind), $"{kind}.{obj.Group} should be an L7 kind");
        var reader = new YamlConfigReader(File);
        MeshObject? parsed = L7Kinds.Parse(obj, reader);
        return new Result(parsed, reader.Errors, reader.Warnings);
    }

    /// <summary>Parses a manifest that must be valid, and returns its object as <typeparamref name="T"/>.</summary>
    public static T Valid<T>(string yaml)
        where T : MeshObject
    {
        Result r = Parse(yaml);
        Assert.True(r.Errors.IsEmpty, "unexpected errors:\n" + string.Join("\n", r.Errors));
        return Assert.IsType<T>(r.Object);
    }

    /// <summary>
    /// Asserts the manifest is refused with an error at <paramref name="field"/> on <paramref name="line"/> whose
    /// message contains <paramref name="message"/> (other errors may accompany it).
    /// </summary>
    public static void Refused(string yaml, string field, int line, string message)
    {
        Result r = Parse(yaml);
        Assert.Null(r.Object);
        Assert.False(r.Errors.IsEmpty);
        bool found = false;
        foreach (ConfigError e in r.Errors)
        {
            if (e.Field == field && e.Line == line && e.Message.Contains(message, StringComparison.Ordinal))
            {
                Assert.Equal(File, e.File);
                found = true;
            }
        }
        Assert.True(found, $"expected {File}:{line}: {field}: ...{message}...; got:\n" + string.Join("\n", r.Errors));
    }

    private static string Scalar(YamlMappingNode map, string key) => ((YamlScalarNode)map.Children[new YamlScalarNode(key)]).Value!;
}
