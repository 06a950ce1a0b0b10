using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.Tests.Kubernetes;

/// <summary>Manifests in, mesh model out: the translation tables read like what a user would kubectl apply.</summary>
internal static class KubeTestUtil
{
    public static TranslationResult Translate(string yaml, KubeTranslatorOptions? options = null)
    {
        ManifestReadResult read = ManifestReader.Parse(yaml, "test.yaml");
        Assert.True(read.Ok, string.Join("\n", read.Errors));
        return new KubeTranslator(options).Translate(read.Objects);
    }

    /// <summary>Translates and asserts there was no error (warnings are the test's business).</summary>
    public static TranslationResult TranslateOk(string yaml, KubeTranslatorOptions? options = null)
    {
        TranslationResult result = Translate(yaml, options);
        Assert.True(result.Errors.IsEmpty, string.Join("\n", result.Errors));
        return result;
    }

    public static Workload Pod(this TranslationResult r, string ns, string name) =>
        Assert.Single(r.Resources.Workloads, w => w.Uid == $"Kubernetes//Pod/{ns}/{name}");

    public static Service Service(this TranslationResult r, string ns, string hostname) =>
        Assert.Single(r.Resources.Services, s => s.Key == $"{ns}/{hostname}");

    public static AuthorizationPolicy Policy(this TranslationResult r, string ns, string name) =>
        Assert.Single(r.Resources.Policies, p => p.Key == $"{ns}/{name}");

    public static T Object<T>(this TranslationResult r, string ns, string name)
        where T : MeshObject =>
        Assert.Single(r.Resources.Objects.OfType<T>(), o => o.Namespace == ns && o.Name == name);

    public static ConfigError SingleError(this TranslationResult r) => Assert.Single(r.Errors);

    /// <summary>A namespace with labels, as YAML.</summary>
    public static string Namespace(string name, string labels = "") => $"""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: {name}
          labels: {(labels.Length == 0 ? "{}" : "{" + labels + "}")}
        ---

        """;

    /// <summary>A running pod with an IP, as the API server would show it (trimmed).</summary>
    public static string RunningPod(string ns, string name, string ip, string labels, string extraSpec = "") => $$"""
        apiVersion: v1
        kind: Pod
        metadata:
          name: {{name}}
          namespace: {{ns}}
          labels: {{{labels}}}
        spec:
          serviceAccountName: {{name.Split('-')[0]}}
          nodeName: node-a
          containers:
          - name: app
            image: registry.example/app:1
            ports:
            - {name: http, containerPort: 8080}
        {{extraSpec}}
        status:
          phase: Running
          podIP: {{ip}}
          podIPs: [{ip: {{ip}}}]
          conditions:
          - {type: Ready, status: "True"}
        ---

        """;
}
