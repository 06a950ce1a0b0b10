extern alias KubeFull;

using Ambient.Daemonset.Tests.Support;
using KubeFull::k8s.Models;

namespace Ambient.Daemonset.Tests.Manifests;

/// <summary>install.yaml against the Kubernetes API types: every field known and well typed, nothing lost.</summary>
public sealed class ManifestSchemaTests
{
    private static readonly string Yaml = File.ReadAllText(Repo.InstallYaml);

    [Fact]
    public void Every_document_is_a_kubernetes_object_with_only_known_fields()
    {
        var objects = KubernetesSchema.Load(Yaml, "install.yaml");

        Assert.Equal(
            [typeof(V1Namespace), typeof(V1ServiceAccount), typeof(V1ServiceAccount), typeof(V1ClusterRole), typeof(V1ClusterRoleBinding),
             typeof(V1Role), typeof(V1RoleBinding), typeof(V1ConfigMap), typeof(V1DaemonSet), typeof(V1DaemonSet)],
            objects.Select(o => o.GetType()));
    }

    /// <summary>The checks are not blind: one wrong letter anywhere fails them, and the error says where.</summary>
    [Theory]
    [InlineData("imagePullPolicy: IfNotPresent", "imagePullPolicyy: IfNotPresent", "Property 'imagePullPolicyy' not found on type 'k8s.Models.V1Container'")]
    [InlineData("mountPropagation: HostToContainer", "mountPropogation: HostToContainer", "Property 'mountPropogation' not found on type 'k8s.Models.V1VolumeMount'")]
    [InlineData("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", "Property 'readOnlyRootFileSystem' not found on type 'k8s.Models.V1SecurityContext'")]
    [InlineData("  resources: [pods, namespaces, services]", "  resource: [pods, namespaces, services]", "Property 'resource' not found on type 'k8s.Models.V1PolicyRule'")]
    [InlineData("priorityClassName: system-node-critical", "priorityClass: system-node-critical", "Property 'priorityClass' not found on type 'k8s.Models.V1PodSpec'")]
    [InlineData("terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: thirty", "'thirty' was not in a correct format")]
    [InlineData("kind: DaemonSet", "kind: DaemonSett", "is not a Kubernetes API type")]
    [InlineData("apiVersion: apps/v1", "apiVersion: apps/v1beta9", "is not a Kubernetes API type")]
    public void A_misspelled_field_is_rejected(string correct, string wrong, string expected)
    {
        Assert.Contains(correct, Yaml, StringComparison.Ordinal);
        int at = Yaml.IndexOf(correct, StringComparison.Ordinal);
        string broken = string.Concat(Yaml.AsSpan(0, at), wrong, Yaml.AsSpan(at + correct.Length));

        var ex = Assert.Throws<SchemaException>(() => KubernetesSchema.Load(broken, "install.yaml"));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.StartsWith("install.yaml", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_round_trip_catches_a_value_the_type_would_change()
    {
        // kubectl (YAML 1.1) and the model loader read 0400 as octal 256, a YAML 1.2 parser as decimal 400: a value
        // whose meaning depends on the reader. The round trip flags every value whose text does not come back.
        string octal = Yaml.Replace("defaultMode: 256", "defaultMode: 0400", StringComparison.Ordinal);

        var ex = Assert.Throws<SchemaException>(() => KubernetesSchema.Load(octal, "install.yaml"));

        Assert.Contains(".spec.template.spec.volumes[4].secret.defaultMode", ex.Message, StringComparison.Ordinal);
        Assert.Contains("is '0400' in the file but '256' once read as its type", ex.Message, StringComparison.Ordinal);
    }
}
