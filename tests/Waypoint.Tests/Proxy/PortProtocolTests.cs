using System.Collections.Immutable;
using Ambient.Mesh.Model;
using Ambient.Waypoint.Proxy;

namespace Ambient.Waypoint.Tests.Proxy;

/// <summary>Which ports the waypoint relays as TCP: Istio's protocol names, appProtocol before the name.</summary>
public sealed class PortProtocolTests
{
    [Theory]
    [InlineData("http", false)]
    [InlineData("http-web", false)]
    [InlineData("http2", false)]
    [InlineData("grpc", false)]
    [InlineData("grpc-web", false)]
    [InlineData("h2c", false)]
    [InlineData("kubernetes.io/h2c", false)]
    [InlineData("tcp", true)]
    [InlineData("tcp-echo", true)]
    [InlineData("tls", true)]
    [InlineData("https", true)]
    [InlineData("mongo", true)]
    [InlineData("mysql-primary", true)]
    [InlineData("redis", true)]
    [InlineData("kubernetes.io/wss", true)]
    [InlineData("web", false)] // not a protocol name: the HTTP path, as an unnamed port
    [InlineData("", false)]
    public void DeclaredValuesAreClassifiedAsIstioReadsThem(string declared, bool tcp) =>
        Assert.Equal(tcp, PortProtocol.IsTcp(declared));

    [Fact]
    public void APortWithoutADeclarationStaysHttp()
    {
        var service = new Service
        {
            Name = "s",
            Namespace = "ns",
            Hostname = "s.ns.svc.cluster.local",
            Ports = ImmutableDictionary<int, int>.Empty.Add(80, 8080).Add(3306, 3306),
            PortProtocols = ImmutableDictionary<int, string>.Empty.Add(3306, "mysql"),
        };
        Assert.True(PortProtocol.IsTcp(service, 3306));
        Assert.False(PortProtocol.IsTcp(service, 80));
        Assert.False(PortProtocol.IsTcp(null, 3306));
    }
}
