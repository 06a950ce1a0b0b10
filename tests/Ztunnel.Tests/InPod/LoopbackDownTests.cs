using Ambient.Mesh.Config;
using Ambient.Ztunnel.InPod;
using Ambient.Ztunnel.Tests.InPod.Support;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// Issue 8: a runtime that leaves a pod's loopback down must not make capture fail with "Cannot assign requested
/// address" (the agent binds 127.0.0.1:15001 inside the pod): installing the rules brings lo up.
/// </summary>
public sealed class LoopbackDownTests
{
    [RootFact]
    public async Task Capture_brings_loopback_up_in_a_pod_whose_runtime_left_it_down()
    {
        string name = $"amb-lo-{Environment.ProcessId}-{Random.Shared.Next(10000)}";
        string netns = $"/var/run/netns/{name}";
        await Command.RunAsync("ip", ["netns", "add", name], InPodCluster.StepTimeout);
        try
        {
            // A new namespace's lo is down, as a careless runtime leaves it.
            var before = await Command.RunAsync("ip", ["netns", "exec", name, "ip", "-o", "link", "show", "lo"], InPodCluster.StepTimeout);
            Assert.DoesNotContain("UP", before.Stdout.Split('<', '>')[1].Split(','));

            await CaptureRules.InstallAsync(netns, CaptureFirewall.Iptables, InboundCapture.Tproxy, CancellationToken.None);

            var after = await Command.RunAsync("ip", ["netns", "exec", name, "ip", "-o", "link", "show", "lo"], InPodCluster.StepTimeout);
            Assert.Contains("UP", after.Stdout.Split('<', '>')[1].Split(','));
            // And the agent can now bind where it listens inside a pod.
            using var ns = Netns.Open(netns);
            using var socket = ns.CreateSocket(System.Net.Sockets.AddressFamily.InterNetwork);
            socket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
            Assert.True(await CaptureRules.PresentAsync(netns, CaptureFirewall.Iptables, CancellationToken.None));
        }
        finally
        {
            await Command.RunAsync("ip", ["netns", "del", name], InPodCluster.StepTimeout);
        }
    }
}
