using System.Text;
using System.Text.Json.Nodes;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.Api;
using BenchmarkDotNet.Attributes;
using YamlDotNet.RepresentationModel;

namespace Ambient.Benchmarks.Kubernetes;

/// <summary>
/// A 10,000-pod PodList (what the API watcher's first list of a large cluster returns, about 3 KB a pod) turned
/// into <see cref="KubeObject"/>s two ways: the watcher's own <see cref="Utf8JsonReader"/> tree builder, and the
/// JSON text handed to YamlDotNet's parser (the baseline), which builds the same tree (KubeJsonTests prove it).
/// </summary>
[MemoryDiagnoser]
public class KubeJsonBenchmarks
{
    public const int Pods = 10_000;

    private byte[] _json = null!;

    [GlobalSetup]
    public void Setup()
    {
        _json = Encoding.UTF8.GetBytes(PodList(Pods));
        // One path is enough to check the fixture (KubeJsonTests prove both build the same tree); the YamlDotNet
        // one takes seconds, and the dry run in CI runs each method once anyway.
        if (Utf8JsonReaderTree().Count != Pods)
        {
            throw new InvalidOperationException("the generated list does not parse to every pod");
        }
    }

    [Benchmark(Baseline = true)]
    public List<KubeObject> YamlDotNetParser()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(Encoding.UTF8.GetString(_json)));
        return Items((YamlMappingNode)stream.Documents[0].RootNode);
    }

    [Benchmark]
    public List<KubeObject> Utf8JsonReaderTree() => Items(KubeJson.ParseObject(_json));

    private static List<KubeObject> Items(YamlMappingNode list)
    {
        var objects = new List<KubeObject>(Pods);
        foreach (YamlNode item in (YamlSequenceNode)list["items"])
        {
            objects.Add(KubeJson.ToKubeObject((YamlMappingNode)item, KubeResource.Pod));
        }
        return objects;
    }

    /// <summary>Pods shaped like a real Deployment's (managed fields left out, as the agent's list would not ask for them either).</summary>
    internal static string PodList(int count)
    {
        var items = new JsonArray();
        for (int i = 0; i < count; i++)
        {
            string ns = $"team-{i % 50}";
            string app = $"svc-{i % 400}";
            string ip = $"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}";
            items.Add(new JsonObject
            {
                ["metadata"] = new JsonObject
                {
                    ["name"] = $"{app}-7d9f8c6b5-{i:x5}",
                    ["generateName"] = $"{app}-7d9f8c6b5-",
                    ["namespace"] = ns,
                    ["uid"] = Guid.NewGuid().ToString(),
                    ["resourceVersion"] = (100_000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["creationTimestamp"] = "2025-01-01T00:00:00Z",
                    ["labels"] = new JsonObject
                    {
                        ["app"] = app,
                        ["version"] = "v1",
                        ["pod-template-hash"] = "7d9f8c6b5",
                        ["service.istio.io/canonical-name"] = app,
                        ["service.istio.io/canonical-revision"] = "v1",
                    },
                    ["annotations"] = new JsonObject
                    {
                        ["ambient.istio.io/redirection"] = "enabled",
                        ["kubectl.kubernetes.io/restartedAt"] = "2025-01-01T00:00:00Z",
                    },
                    ["ownerReferences"] = new JsonArray(new JsonObject
                    {
                        ["apiVersion"] = "apps/v1", ["kind"] = "ReplicaSet", ["name"] = $"{app}-7d9f8c6b5",
                        ["uid"] = Guid.NewGuid().ToString(), ["controller"] = true, ["blockOwnerDeletion"] = true,
                    }),
                },
                ["spec"] = new JsonObject
                {
                    ["serviceAccountName"] = app,
                    ["nodeName"] = $"node-{i % 100}",
                    ["restartPolicy"] = "Always",
                    ["terminationGracePeriodSeconds"] = 30,
                    ["containers"] = new JsonArray(new JsonObject
                    {
                        ["name"] = "app",
                        ["image"] = $"registry.example/{app}:1.2.3",
                        ["ports"] = new JsonArray(
                            new JsonObject { ["name"] = "http", ["containerPort"] = 8080, ["protocol"] = "TCP" },
                            new JsonObject { ["name"] = "grpc", ["containerPort"] = 9090, ["protocol"] = "TCP" }),
                        ["env"] = new JsonArray(
                            new JsonObject { ["name"] = "LOG_LEVEL", ["value"] = "info" },
                            new JsonObject { ["name"] = "POD_NAME", ["valueFrom"] = new JsonObject { ["fieldRef"] = new JsonObject { ["fieldPath"] = "metadata.name" } } }),
                        ["resources"] = new JsonObject
                        {
                            ["requests"] = new JsonObject { ["cpu"] = "100m", ["memory"] = "128Mi" },
                            ["limits"] = new JsonObject { ["cpu"] = "1", ["memory"] = "512Mi" },
                        },
                        ["readinessProbe"] = new JsonObject { ["httpGet"] = new JsonObject { ["path"] = "/ready", ["port"] = 8080 }, ["periodSeconds"] = 5 },
                        ["volumeMounts"] = new JsonArray(new JsonObject { ["name"] = "kube-api-access", ["mountPath"] = "/var/run/secrets/kubernetes.io/serviceaccount", ["readOnly"] = true }),
                    }),
                    ["volumes"] = new JsonArray(new JsonObject { ["name"] = "kube-api-access", ["projected"] = new JsonObject { ["defaultMode"] = 420 } }),
                },
                ["status"] = new JsonObject
                {
                    ["phase"] = "Running",
                    ["hostIP"] = $"192.168.{i % 100}.1",
                    ["podIP"] = ip,
                    ["podIPs"] = new JsonArray(new JsonObject { ["ip"] = ip }),
                    ["startTime"] = "2025-01-01T00:00:01Z",
                    ["conditions"] = new JsonArray(
                        new JsonObject { ["type"] = "Initialized", ["status"] = "True", ["lastTransitionTime"] = "2025-01-01T00:00:01Z" },
                        new JsonObject { ["type"] = "Ready", ["status"] = "True", ["lastTransitionTime"] = "2025-01-01T00:00:05Z" },
                        new JsonObject { ["type"] = "ContainersReady", ["status"] = "True", ["lastTransitionTime"] = "2025-01-01T00:00:05Z" },
                        new JsonObject { ["type"] = "PodScheduled", ["status"] = "True", ["lastTransitionTime"] = "2025-01-01T00:00:00Z" }),
                    ["containerStatuses"] = new JsonArray(new JsonObject
                    {
                        ["name"] = "app", ["ready"] = true, ["restartCount"] = 0, ["started"] = true,
                        ["image"] = $"registry.example/{app}:1.2.3", ["imageID"] = "registry.example/app@sha256:0123456789abcdef",
                        ["containerID"] = $"containerd://{i:x64}",
                        ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = "2025-01-01T00:00:02Z" } },
                    }),
                },
            });
        }
        return new JsonObject
        {
            ["kind"] = "PodList",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject { ["resourceVersion"] = "200000" },
            ["items"] = items,
        }.ToJsonString();
    }
}
