extern alias KubeFull;

using Ambient.Daemonset.Tests.Support;
using KubeFull::k8s;
using KubeFull::k8s.Models;

namespace Ambient.Daemonset.Tests.Manifests;

/// <summary>install.yaml, loaded once through <see cref="KubernetesSchema"/>, with its objects by kind and name.</summary>
internal static class Install
{
    public static IReadOnlyList<object> Objects { get; } = KubernetesSchema.Load(File.ReadAllText(Repo.InstallYaml), "install.yaml");

    public const string Namespace = "ambient-system";

    public static T One<T>(string name) where T : IKubernetesObject<V1ObjectMeta> =>
        Objects.OfType<T>().Single(o => o.Metadata.Name == name);

    public static V1DaemonSet Agent => One<V1DaemonSet>("ztunnel");

    public static V1DaemonSet Installer => One<V1DaemonSet>("ambient-cni");

    public static V1Container Container(V1DaemonSet ds) => Assert.Single(ds.Spec.Template.Spec.Containers);

    /// <summary>The host path behind a container's mount.</summary>
    public static string HostPathOf(V1DaemonSet ds, string mountPath)
    {
        var mount = Container(ds).VolumeMounts.Single(m => m.MountPath == mountPath);
        return ds.Spec.Template.Spec.Volumes.Single(v => v.Name == mount.Name).HostPath.Path;
    }

    /// <summary>The container's environment as the kubelet gives it: literal values, and the field each downward-API variable reads.</summary>
    public static Dictionary<string, string> Env(V1DaemonSet ds) =>
        Container(ds).Env.ToDictionary(e => e.Name, e => e.Value ?? $"fieldRef:{e.ValueFrom.FieldRef.FieldPath}");
}
