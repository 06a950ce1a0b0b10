using System.Text;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.Api;
using YamlDotNet.RepresentationModel;

namespace Ambient.Benchmarks.Kubernetes;

/// <summary>
/// What the API watcher retains per watched object, which BenchmarkDotNet (it counts allocations, not what stays
/// alive) cannot show: <c>dotnet run -c Release --project perf/Ambient.Benchmarks -- --kube-object-memory</c> holds
/// the 10,000 pods of <see cref="KubeJsonBenchmarks"/>' PodList both ways and prints the live heap each costs, measured
/// with <see cref="GC.GetTotalMemory(bool)"/> after full collections: as node trees (what a <see cref="KubeObject"/> kept
/// before issue 8's change) and as <see cref="KubeObject"/>s holding their compact JSON (now).
/// </summary>
internal static class KubeObjectMemory
{
    public static int Run()
    {
        byte[] list = Encoding.UTF8.GetBytes(KubeJsonBenchmarks.PodList(KubeJsonBenchmarks.Pods));
        long trees = Retained(() =>
        {
            var held = new List<YamlMappingNode>(KubeJsonBenchmarks.Pods);
            foreach (YamlNode item in (YamlSequenceNode)KubeJson.ParseObject(list)["items"])
            {
                held.Add((YamlMappingNode)item);
            }
            return held;
        });
        long objects = Retained(() =>
        {
            var held = new List<KubeObject>(KubeJsonBenchmarks.Pods);
            foreach (YamlNode item in (YamlSequenceNode)KubeJson.ParseObject(list)["items"])
            {
                held.Add(KubeJson.ToKubeObject((YamlMappingNode)item, KubeResource.Pod));
            }
            return held;
        });
        int pods = KubeJsonBenchmarks.Pods;
        Console.WriteLine($"PodList: {pods} pods, {list.Length / 1024.0 / pods:0.0} KB of JSON a pod");
        Console.WriteLine($"node trees held:             {trees / 1048576.0,8:0.0} MB  {trees / 1024.0 / pods,6:0.0} KB a pod");
        Console.WriteLine($"KubeObjects (compact JSON):  {objects / 1048576.0,8:0.0} MB  {objects / 1024.0 / pods,6:0.0} KB a pod");
        Console.WriteLine($"ratio: {(double)objects / trees:0.00}");
        return 0;
    }

    /// <summary>Live heap growth while what <paramref name="build"/> returns is held.</summary>
    private static long Retained(Func<object> build)
    {
        long before = Settle();
        object held = build();
        long after = Settle();
        GC.KeepAlive(held);
        return after - before;
    }

    private static long Settle()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
