using System.Net;
using Ambient.Mesh.Config;

namespace Ambient.Ztunnel.Tests.Support;

/// <summary>
/// Test traffic never leaves the machine (issue 13): outside the network namespaces a test creates, every address it
/// dials, or has an agent dial for it (service VIPs included: a VIP the mesh fails to resolve is dialled as it is),
/// is in 127.0.0.0/8. The helpers that dial call <see cref="Loopback"/>, so a test that strays fails at once instead
/// of sending packets to a private or public address. Config-only tests (parse, validate; never dialled) may use any
/// range.
/// </summary>
internal static class TestAddresses
{
    public static bool IsLoopback(IPAddress address)
    {
        var a = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        return IPAddress.IsLoopback(a);
    }

    /// <summary>Returns <paramref name="endpoint"/> after checking that dialling it stays on this machine.</summary>
    public static IPEndPoint Loopback(IPEndPoint endpoint)
    {
        Assert.True(IsLoopback(endpoint.Address), $"a test must not dial {endpoint}: outside its own network namespaces every address a test dials is in 127.0.0.0/8");
        return endpoint;
    }

    /// <summary>Every workload address and service VIP of a config that agents on this machine serve and dial.</summary>
    public static void AssertDialable(MeshConfig config)
    {
        foreach (var w in config.Workloads)
        {
            foreach (var ip in w.WorkloadIps)
            {
                Assert.True(IsLoopback(ip), $"workload {w.Namespace}/{w.Name} has address {ip}: a test mesh on this machine uses 127.0.0.0/8 only");
            }
        }
        foreach (var s in config.Services)
        {
            foreach (var vip in s.Vips)
            {
                Assert.True(IsLoopback(vip.Address), $"service {s.Hostname} has VIP {vip.Address}: a test mesh on this machine uses 127.0.0.0/8 only");
            }
        }
    }
}
