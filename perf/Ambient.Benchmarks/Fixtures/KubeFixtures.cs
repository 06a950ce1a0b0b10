using System.Text;
using Ambient.Mesh.Kubernetes;

namespace Ambient.Benchmarks.Fixtures;

/// <summary>
/// A cluster as the Kubernetes API source sees it: Deployment pods shaped like `kubectl get pod -o yaml` (owner,
/// five labels, a named container port, status with IP and conditions), one Service per ten pods (half with a
/// named targetPort), an ambient label on every namespace and one selector AuthorizationPolicy per service.
/// </summary>
public static class KubeFixtures
{
    /// <summary>Manifest text of the cluster; <paramref name="namespaces"/> spreads it (1 puts everything in one namespace).</summary>
    public static string Yaml(int pods, int namespaces)
    {
        int services = pods / 10;
        var sb = new StringBuilder(pods * 900);
        for (int n = 0; n < namespaces; n++)
        {
            sb.Append("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-").Append(n)
              .Append("\n  labels: {istio.io/dataplane-mode: ambient}\n---\n");
        }
        for (int s = 0; s < services; s++)
        {
            int ns = s % namespaces;
            sb.Append("apiVersion: v1\nkind: Service\nmetadata:\n  name: app-").Append(s).Append("\n  namespace: team-").Append(ns).Append('\n')
              .Append("spec:\n  type: ClusterIP\n  clusterIP: 10.96.").Append(s / 250).Append('.').Append(s % 250 + 1)
              .Append("\n  clusterIPs: [10.96.").Append(s / 250).Append('.').Append(s % 250 + 1).Append("]\n")
              .Append("  selector: {app: app-").Append(s).Append("}\n")
              .Append("  ports:\n  - {name: http, port: 80, protocol: TCP, targetPort: ").Append(s % 2 == 0 ? "http" : "8080").Append("}\n")
              .Append("  - {name: metrics, port: 9090, protocol: TCP, targetPort: 9090}\n---\n");
            sb.Append("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: app-").Append(s)
              .Append("\n  namespace: team-").Append(ns).Append('\n')
              .Append("spec:\n  selector: {matchLabels: {app: app-").Append(s).Append("}}\n")
              .Append("  rules:\n  - from: [{source: {namespaces: [team-").Append(ns).Append(", ingress]}}]\n    to: [{operation: {ports: [\"8080\"]}}]\n---\n");
        }
        for (int p = 0; p < pods; p++)
        {
            int s = p % services;
            int ns = s % namespaces;
            string rs = $"app-{s}-5c9f8d7b6";
            sb.Append("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ").Append(rs).Append("-p").Append(p)
              .Append("\n  generateName: ").Append(rs).Append("-\n  namespace: team-").Append(ns)
              .Append("\n  uid: 00000000-0000-4000-8000-").Append(p.ToString("D12", System.Globalization.CultureInfo.InvariantCulture))
              .Append("\n  resourceVersion: \"").Append(1000 + p).Append("\"\n")
              .Append("  labels: {app: app-").Append(s).Append(", version: v1, pod-template-hash: 5c9f8d7b6, tier: backend, team: t").Append(ns).Append("}\n")
              .Append("  ownerReferences:\n  - {apiVersion: apps/v1, kind: ReplicaSet, name: ").Append(rs).Append(", uid: 1, controller: true, blockOwnerDeletion: true}\n")
              .Append("spec:\n  serviceAccountName: app-").Append(s).Append("\n  nodeName: node-").Append(p % 50).Append('\n')
              .Append("  containers:\n  - name: app\n    image: registry.example/app:1\n    ports:\n    - {name: http, containerPort: 8080, protocol: TCP}\n    - {name: metrics, containerPort: 9090, protocol: TCP}\n")
              .Append("status:\n  phase: Running\n  podIP: 10.").Append(64 + p / 65536).Append('.').Append(p / 256 % 256).Append('.').Append(p % 256)
              .Append("\n  podIPs: [{ip: 10.").Append(64 + p / 65536).Append('.').Append(p / 256 % 256).Append('.').Append(p % 256).Append("}]\n")
              .Append("  conditions:\n  - {type: Initialized, status: \"True\"}\n  - {type: Ready, status: \"True\"}\n  - {type: ContainersReady, status: \"True\"}\n---\n");
        }
        return sb.ToString();
    }

    /// <summary>The cluster's objects as the API source would hand them over (no file).</summary>
    public static KubeObject[] Objects(int pods, int namespaces)
    {
        ManifestReadResult read = ManifestReader.Parse(Yaml(pods, namespaces), "fixture.yaml");
        if (!read.Ok)
        {
            throw new InvalidOperationException($"fixture does not read: {read.Errors[0]}");
        }
        var objects = new KubeObject[read.Objects.Length];
        for (int i = 0; i < objects.Length; i++)
        {
            objects[i] = read.Objects[i] with { File = null };
        }
        return objects;
    }
}
