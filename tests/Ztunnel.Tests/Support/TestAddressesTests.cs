using System.Net;

namespace Ambient.Ztunnel.Tests.Support;

/// <summary>
/// Issue 13, finding 9: the loopback functional tests never make an agent dial outside 127.0.0.0/8, service VIPs
/// included (a VIP the mesh fails to resolve is dialled as it is).
/// </summary>
public sealed class TestAddressesTests
{
    [Fact]
    public async Task The_two_node_mesh_has_every_workload_and_vip_on_loopback()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        TestAddresses.AssertDialable(mesh.Config);
        Assert.True(TestAddresses.IsLoopback(mesh.ServiceVip), $"service VIP {mesh.ServiceVip}");
        Assert.True(TestAddresses.IsLoopback(mesh.ClientIp) && TestAddresses.IsLoopback(mesh.ServerIp));
    }

    [Theory]
    [InlineData("10.96.0.10:80")]
    [InlineData("192.168.1.1:80")]
    [InlineData("172.16.0.1:80")]
    [InlineData("8.8.8.8:53")]
    public void The_dial_guard_refuses_addresses_off_this_machine(string endpoint) =>
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => TestAddresses.Loopback(IPEndPoint.Parse(endpoint)));

    [Fact]
    public void The_dial_guard_lets_loopback_through() =>
        Assert.Equal(IPEndPoint.Parse("127.1.2.3:80"), TestAddresses.Loopback(IPEndPoint.Parse("127.1.2.3:80")));
}
