using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;

namespace Ambient.Mesh.Tests.Kubernetes;

public sealed class ManifestReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ambient-manifests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void MultiDocumentYamlReadsEveryObjectWithMetadata()
    {
        const string yaml = """
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
              labels:
                istio.io/dataplane-mode: ambient
            ---
            # a comment-only document in between is skipped
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: web-0
              namespace: shop
              uid: 4f1c2a9e-0000-4000-8000-000000000001
              resourceVersion: "1234"
              labels:
                app: web
                version: "2"
              annotations:
                prometheus.io/scrape: "true"
            spec:
              containers: [{name: web, image: nginx}]
            ---
            """;
        ManifestReadResult result = ManifestReader.Parse(yaml, "shop.yaml");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Empty(result.Warnings);
        Assert.Equal(2, result.Objects.Length);
        KubeObject ns = result.Objects[0];
        Assert.Equal(("v1", "Namespace", "", "shop"), (ns.ApiVersion, ns.Kind, ns.Namespace, ns.Name));
        Assert.Equal("ambient", ns.Labels["istio.io/dataplane-mode"]);
        KubeObject pod = result.Objects[1];
        Assert.Equal(("Pod", "shop", "web-0", "shop.yaml"), (pod.Kind, pod.Namespace, pod.Name, pod.File));
        Assert.Equal("4f1c2a9e-0000-4000-8000-000000000001", pod.Uid);
        Assert.Equal("1234", pod.ResourceVersion);
        Assert.Equal("2", pod.Labels["version"]);
        Assert.Equal("true", pod.Annotations["prometheus.io/scrape"]);
        Assert.Equal(10, pod.Body.Start.Line);
    }

    [Fact]
    public void JsonFileWithTabsAndAListIsRead()
    {
        string file = Path.Combine(_dir, "list.json");
        // kubectl get -o json output: a List, tab-indented here (YAML forbids tab indentation, JSON allows it).
        File.WriteAllText(file, "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"List\",\n\t\"items\": [\n\t\t{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"web\", \"namespace\": \"shop\"}},\n\t\t{\"apiVersion\": \"security.istio.io/v1\", \"kind\": \"AuthorizationPolicy\", \"metadata\": {\"name\": \"deny-all\", \"namespace\": \"shop\"}, \"spec\": {}}\n\t]\n}\n");
        ManifestReadResult result = ManifestReader.Read([file]);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Equal(["Service", "AuthorizationPolicy"], result.Objects.Select(o => o.Kind));
        Assert.Equal("security.istio.io", result.Objects[1].Group);
        Assert.Equal(5, result.Objects[0].Body.Start.Line);
    }

    [Fact]
    public void TypedListItemsInheritApiVersionAndKind()
    {
        const string yaml = """
            apiVersion: v1
            kind: PodList
            metadata: {resourceVersion: "99"}
            items:
            - metadata: {name: a, namespace: x}
            - metadata: {name: b, namespace: x}
            """;
        ManifestReadResult result = ManifestReader.Parse(yaml, "pods.yaml");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.All(result.Objects, o => Assert.Equal(("v1", "Pod"), (o.ApiVersion, o.Kind)));
    }

    [Fact]
    public void DirectoryReadsManifestFilesInNameOrderNotRecursively()
    {
        File.WriteAllText(Path.Combine(_dir, "b.yml"), "apiVersion: v1\nkind: Service\nmetadata: {name: second}\n");
        File.WriteAllText(Path.Combine(_dir, "a.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: first}\n");
        File.WriteAllText(Path.Combine(_dir, "notes.txt"), "not a manifest");
        File.WriteAllText(Path.Combine(_dir, ".a.yaml.swp"), "editor junk");
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        File.WriteAllText(Path.Combine(_dir, "sub", "c.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: nested}\n");
        ManifestReadResult result = ManifestReader.Read([_dir]);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Equal(["first", "second"], result.Objects.Select(o => o.Name));
        Assert.Equal([Path.Combine(_dir, "a.yaml"), Path.Combine(_dir, "b.yml")], result.Files.ToArray());
    }

    [Theory]
    [InlineData("kind: Pod\nmetadata: {name: x}\n", 1, "apiVersion", "required")]
    [InlineData("apiVersion: v1\nmetadata: {name: x}\n", 1, "kind", "required")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n", 3, "metadata.name", "required")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\n", 3, "metadata.name", "generateName")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels:\n    app: [a, b]\n", 6, "metadata.labels[\"app\"]", "expected a string")]
    [InlineData("- just\n- a list\n", 1, "", "expected a Kubernetes object")]
    public void BadObjectsAreReportedWithLineAndField(string yaml, int line, string field, string message)
    {
        ManifestReadResult result = ManifestReader.Parse(yaml, "bad.yaml");
        ConfigError e = Assert.Single(result.Errors);
        Assert.Equal(("bad.yaml", line, field), (e.File, e.Line, e.Field));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Empty(result.Objects);
    }

    [Fact]
    public void BadObjectDoesNotLoseItsNeighbours()
    {
        const string yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: good-1}
            ---
            apiVersion: v1
            metadata: {name: no-kind}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: good-2}
            """;
        ManifestReadResult result = ManifestReader.Parse(yaml, "mixed.yaml");
        ConfigError e = Assert.Single(result.Errors);
        Assert.Equal((5, "document[1].kind"), (e.Line, e.Field));
        Assert.Equal(["good-1", "good-2"], result.Objects.Select(o => o.Name));
    }

    [Fact]
    public void YamlSyntaxErrorNamesFileAndLine()
    {
        const string yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   labels: {a: b}\n";
        ManifestReadResult result = ManifestReader.Parse(yaml, "syntax.yaml");
        ConfigError e = Assert.Single(result.Errors);
        Assert.Equal(("syntax.yaml", 5), (e.File, e.Line));
        Assert.StartsWith("YAML syntax error", e.Message, StringComparison.Ordinal);
        Assert.Empty(result.Objects);
    }

    [Fact]
    public void DuplicateObjectIsAnErrorAndTheFirstIsKept()
    {
        File.WriteAllText(Path.Combine(_dir, "a.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: 10.96.0.1}\n");
        File.WriteAllText(Path.Combine(_dir, "b.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: 10.96.0.2}\n");
        ManifestReadResult result = ManifestReader.Read([_dir]);
        ConfigError e = Assert.Single(result.Errors);
        Assert.Equal(Path.Combine(_dir, "b.yaml"), e.File);
        Assert.Contains("Service shop/web is defined twice", e.Message, StringComparison.Ordinal);
        Assert.Equal(Path.Combine(_dir, "a.yaml"), Assert.Single(result.Objects).File);
    }

    [Fact]
    public void EmptyFilesAndDirectoriesAreWarningsNotSilence()
    {
        File.WriteAllText(Path.Combine(_dir, "empty.yaml"), "# nothing here yet\n---\n");
        ManifestReadResult file = ManifestReader.Read([Path.Combine(_dir, "empty.yaml")]);
        Assert.True(file.Ok);
        Assert.Empty(file.Objects);
        Assert.Contains("no Kubernetes objects", Assert.Single(file.Warnings).Message, StringComparison.Ordinal);

        string emptyDir = Path.Combine(_dir, "none");
        Directory.CreateDirectory(emptyDir);
        ManifestReadResult dir = ManifestReader.Read([emptyDir]);
        Assert.Contains("no .yaml, .yml or .json files", Assert.Single(dir.Warnings).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingPathIsAnError()
    {
        string missing = Path.Combine(_dir, "missing.yaml");
        ManifestReadResult result = ManifestReader.Read([missing]);
        ConfigError e = Assert.Single(result.Errors);
        Assert.Equal(missing, e.File);
        Assert.Contains("no such file", e.Message, StringComparison.Ordinal);
    }
}
