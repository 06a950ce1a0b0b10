using System.Text.RegularExpressions;
using Ambient.Mesh.ControlPlane;

namespace Ambient.Waypoint.Cli;

/// <summary>
/// <c>waypoint generate</c>: prints what a namespace needs for its waypoint, as <c>istioctl waypoint generate</c> does
/// (the Gateway), plus what Istio's deployment controller would create from it and no controller creates here: the
/// ServiceAccount (the identity <c>spiffe://&lt;td&gt;/ns/NS/sa/NAME</c>), the read-only ClusterRoleBinding the
/// Kubernetes source needs, the Deployment and the Service. Nothing is applied: pipe it to <c>kubectl apply -f -</c>.
/// </summary>
internal static partial class GenerateCommand
{
    /// <summary>
    /// The node agent's CA endpoint inside the waypoint's own pod (ztunnel's InPodManager.PodCaPort): under
    /// daemonset/install.yaml's built-in CA the agent signs there, for this pod's service account only.
    /// </summary>
    public const string NodeLocalCaAddress = "http://127.0.0.1:15012";

    /// <summary>The install's read-only ClusterRole (daemonset/install.yaml): exactly the kinds the Kubernetes source watches.</summary>
    public const string ReaderClusterRole = "ambient-ztunnel";

    public const string Usage = """
        waypoint generate: prints the manifests of a namespace's waypoint (Gateway, ServiceAccount, ClusterRoleBinding,
        Deployment, Service) for 'kubectl apply -f -'. Applies nothing.

        Usage:
          waypoint generate --namespace NS [--name NAME] [--image IMAGE] [--for TRAFFIC] [--ca-address ADDR]

        Options:
          -n, --namespace NS  The namespace the waypoint serves (required).
          --name NAME         The Gateway's name, also its ServiceAccount, Deployment and Service (default waypoint).
                              Its identity is spiffe://<trust domain>/ns/NS/sa/NAME.
          --image IMAGE       The waypoint image (default localhost/ambient/waypoint:<this version>, as
                              daemonset/build-images.sh tags it).
          --for TRAFFIC       istio.io/waypoint-for: service (default), workload, all or none.
          --ca-address ADDR   Istio's CA the waypoint gets its certificate from (for example
                              istiod.istio-system.svc:15012), with the istio-ca token and the istio-ca-root-cert
                              ConfigMap Istio publishes in every namespace: for agents that run under istiod.
                              Default: the node agent of daemonset/install.yaml (built-in CA) signs it inside the
                              waypoint's own pod (http://127.0.0.1:15012 there, reachable from that pod only), for the
                              pod's service account only; no token, no root certificate to mount.
          -h, --help          This help.

        The ClusterRoleBinding gives the waypoint's ServiceAccount the install's read-only ClusterRole ambient-ztunnel
        (get/list/watch of the mesh kinds; daemonset/install.yaml), so install.yaml must be applied first.
        """;

    /// <summary>Runs the subcommand: 0 with the manifests on <paramref name="output"/>, 2 with a usage error on <paramref name="error"/>.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, string version)
    {
        string? ns = null, name = "waypoint", image = null, traffic = "service", ca = null, problem = null;
        for (int i = 0; i < args.Length && problem is null; i++)
        {
            string a = args[i];
            string? Next(string what)
            {
                if (i + 1 < args.Length)
                {
                    return args[++i];
                }
                problem = $"{a} needs {what}";
                return null;
            }
            switch (a)
            {
                case "-h" or "--help":
                    output.WriteLine(Usage);
                    return 0;
                case "-n" or "--namespace":
                    ns = Next("a namespace");
                    break;
                case "--name":
                    name = Next("a name");
                    break;
                case "--image":
                    image = Next("an image reference");
                    break;
                case "--for":
                    traffic = Next("service, workload, all or none");
                    break;
                case "--ca-address":
                    ca = Next("an address");
                    break;
                default:
                    problem = $"unknown argument '{a}'";
                    break;
            }
        }
        image ??= $"localhost/ambient/waypoint:{version}";
        problem ??= ns is null ? "which namespace? give --namespace NS"
            : !DnsLabel().IsMatch(ns) ? $"--namespace: '{ns}' is not a namespace name (lowercase letters, digits and '-', at most 63)"
            : name is null || !DnsLabel().IsMatch(name) ? $"--name: '{name}' is not a valid name (lowercase letters, digits and '-', at most 63)"
            : !ImageReference().IsMatch(image) ? $"--image: '{image}' is not an image reference"
            : traffic is not ("service" or "workload" or "all" or "none") ? $"--for takes service, workload, all or none, not '{traffic}'"
            : ca is null ? null : CheckAddress(ca);
        if (problem is not null)
        {
            error.WriteLine($"waypoint generate: {problem}\nRun 'waypoint generate --help' for usage.");
            return 2;
        }
        output.Write(Render(ns!, name!, image, traffic!, ca));
        return 0;
    }

    private static string? CheckAddress(string ca)
    {
        try
        {
            _ = ControlPlaneOptions.ParseAddress(ca, "--ca-address");
            return null;
        }
        catch (FormatException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>
    /// The manifests. Every value written is a checked name, a fixed string or a checked image reference, so nothing needs
    /// YAML quoting beyond what is here. <paramref name="ca"/> null: the node agent's in-pod CA endpoint.
    /// </summary>
    internal static string Render(string ns, string name, string image, string traffic, string? ca) => $$"""
            # The waypoint {{ns}}/{{name}} (waypoint generate). Its identity: spiffe://<trust domain>/ns/{{ns}}/sa/{{name}}.
            # Send a namespace's traffic through it: kubectl label namespace {{ns}} istio.io/use-waypoint={{name}}
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata:
              name: {{name}}
              namespace: {{ns}}
              labels:
                istio.io/waypoint-for: {{traffic}}
            spec:
              gatewayClassName: istio-waypoint
              listeners:
              - name: mesh
                port: 15008
                protocol: HBONE
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: {{name}}
              namespace: {{ns}}
              labels:
                gateway.networking.k8s.io/gateway-name: {{name}}
            ---
            # The waypoint reads routes, policies, services and pods from the API server (--kubernetes) with the
            # install's read-only ClusterRole; it writes nothing.
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata:
              name: ambient-waypoint-{{ns}}-{{name}}
              labels:
                gateway.networking.k8s.io/gateway-name: {{name}}
            roleRef:
              apiGroup: rbac.authorization.k8s.io
              kind: ClusterRole
              name: {{ReaderClusterRole}}
            subjects:
            - kind: ServiceAccount
              name: {{name}}
              namespace: {{ns}}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: {{name}}
              namespace: {{ns}}
              labels:
                gateway.networking.k8s.io/gateway-name: {{name}}
                app.kubernetes.io/part-of: ambient
            spec:
              replicas: 1
              selector:
                matchLabels:
                  gateway.networking.k8s.io/gateway-name: {{name}}
              template:
                metadata:
                  labels:
                    gateway.networking.k8s.io/gateway-name: {{name}}
                    app.kubernetes.io/part-of: ambient
                    # The waypoint speaks HBONE itself: its own pod is not captured by the node agent.
                    istio.io/dataplane-mode: none
                  annotations:
                    prometheus.io/scrape: "true"
                    prometheus.io/port: "15020"
                    prometheus.io/path: /metrics
                spec:
                  serviceAccountName: {{name}}
                  terminationGracePeriodSeconds: 30
                  nodeSelector:
                    kubernetes.io/os: linux
                  containers:
                  - name: waypoint
                    image: {{image}}
                    imagePullPolicy: IfNotPresent
                    # Which Gateway comes from GATEWAY_NAMESPACE/GATEWAY_NAME below; the mesh from the API server.
                    args:
                    - --kubernetes
                    env:
                    - name: GATEWAY_NAME
                      value: {{name}}
                    - name: GATEWAY_NAMESPACE
                      valueFrom:
                        fieldRef:
                          fieldPath: metadata.namespace
                    - name: POD_NAME
                      valueFrom:
                        fieldRef:
                          fieldPath: metadata.name
                    - name: POD_NAMESPACE
                      valueFrom:
                        fieldRef:
                          fieldPath: metadata.namespace
                    - name: NODE_NAME
                      valueFrom:
                        fieldRef:
                          fieldPath: spec.nodeName
                    - name: INSTANCE_IP
                      valueFrom:
                        fieldRef:
                          fieldPath: status.podIP
                    - name: SERVICE_ACCOUNT
                      valueFrom:
                        fieldRef:
                          fieldPath: spec.serviceAccountName
            {{CaEnv(ca)}}
                    ports:
                    - name: mesh
                      containerPort: 15008
                      protocol: TCP
                    - name: http-metrics
                      containerPort: 15020
                      protocol: TCP
                    - name: status-port
                      containerPort: 15021
                      protocol: TCP
                    readinessProbe:
                      httpGet:
                        path: /healthz/ready
                        port: 15021
                      periodSeconds: 5
                      failureThreshold: 3
                    resources:
                      requests:
                        cpu: 100m
                        memory: 64Mi
                      limits:
                        memory: 1Gi
                    securityContext:
                      # Like the agent's, without its capabilities: the waypoint only listens above 1024 and dials out.
                      runAsUser: 1337
                      runAsGroup: 1337
                      runAsNonRoot: true
                      privileged: false
                      allowPrivilegeEscalation: false
                      readOnlyRootFilesystem: true
                      capabilities:
                        drop: [ALL]
                      seccompProfile:
                        type: RuntimeDefault
                    volumeMounts:
            {{CaMounts(ca)}}        - name: tmp
                      mountPath: /tmp
                  volumes:
            {{CaVolumes(ca)}}      - name: tmp
                    emptyDir:
                      medium: Memory
                      sizeLimit: 16Mi
            ---
            # The agents reach the waypoint through this Service (the Gateway's hostname {{name}}.{{ns}}.svc).
            apiVersion: v1
            kind: Service
            metadata:
              name: {{name}}
              namespace: {{ns}}
              labels:
                gateway.networking.k8s.io/gateway-name: {{name}}
            spec:
              selector:
                gateway.networking.k8s.io/gateway-name: {{name}}
              ports:
              - name: mesh
                port: 15008
                targetPort: 15008
                protocol: TCP
              - name: http-metrics
                port: 15020
                targetPort: 15020
                protocol: TCP
              - name: status-port
                port: 15021
                targetPort: 15021
                protocol: TCP

            """;

    // The fragments below are inserted into Render's template as they are: their lines carry the template's indentation.
    private static string CaEnv(string? ca) => ca is null
        ? $"""
                # The certificate comes from the node agent (daemonset/install.yaml, built-in CA): it serves Istio's CA API
                # on this pod's own loopback, reachable from this pod only, and signs this pod's service account only.
                # No token and no root to mount: the answer carries the mesh root.
                - name: CA_ADDRESS
                  value: {NodeLocalCaAddress}
        """
        : $"""
                # The certificate comes from Istio's CA, as the agents' do: no CA key in the waypoint's namespace.
                - name: CA_ADDRESS
                  value: {ca}
                - name: CA_ROOT_CA
                  value: /var/run/secrets/istio/root-cert.pem
                - name: AUTH_TOKEN
                  value: /var/run/secrets/tokens/istio-token
        """;

    private static string CaMounts(string? ca) => ca is null ? "" : """
                - name: istio-token
                  mountPath: /var/run/secrets/tokens
                  readOnly: true
                - name: istio-ca-root-cert
                  mountPath: /var/run/secrets/istio
                  readOnly: true

        """;

    private static string CaVolumes(string? ca) => ca is null ? "" : """
              # The projected token istiod's CA authenticates (audience istio-ca), rotated by the kubelet.
              - name: istio-token
                projected:
                  sources:
                  - serviceAccountToken:
                      audience: istio-ca
                      expirationSeconds: 43200
                      path: istio-token
              - name: istio-ca-root-cert
                configMap:
                  name: istio-ca-root-cert

        """;

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    // registry/path:tag or @digest: no spaces, quotes or YAML indicators can slip into the manifest.
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")]
    private static partial Regex ImageReference();
}
