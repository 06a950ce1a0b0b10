using System.Collections.Immutable;
using Ambient.Mesh.Model;
using Ambient.Waypoint.Proxy;

namespace Ambient.Waypoint.Tests.Proxy;

/// <summary>Which ports the waypoint relays as TCP, parses as HTTP or sniffs: Istio's protocol names, appProtocol before the name.</summary>
public sealed class PortProtocolTests
{
    [Theory]
    [InlineData("http", nameof(DeclaredProtocol.Http))]
    [InlineData("http-web", nameof(DeclaredProtocol.Http))]
    [InlineData("http2", nameof(DeclaredProtocol.Http))]
    [InlineData("grpc", nameof(DeclaredProtocol.Http))]
    [InlineData("grpc-web", nameof(DeclaredProtocol.Http))]
    [InlineData("h2c", nameof(DeclaredProtocol.Http))]
    [InlineData("kubernetes.io/h2c", nameof(DeclaredProtocol.Http))]
    [InlineData("tcp", nameof(DeclaredProtocol.Tcp))]
    [InlineData("tcp-echo", nameof(DeclaredProtocol.Tcp))]
    [InlineData("tls", nameof(DeclaredProtocol.Tcp))]
    [InlineData("https", nameof(DeclaredProtocol.Tcp))]
    [InlineData("mongo", nameof(DeclaredProtocol.Tcp))]
    [InlineData("mysql-primary", nameof(DeclaredProtocol.Tcp))]
    [InlineData("redis", nameof(DeclaredProtocol.Tcp))]
    [InlineData("kubernetes.io/wss", nameof(DeclaredProtocol.Tcp))]
    [InlineData("web", nameof(DeclaredProtocol.Undeclared))] // not a protocol name: sniffed, as an unnamed port
    [InlineData("", nameof(DeclaredProtocol.Undeclared))]
    public void DeclaredValuesAreClassifiedAsIstioReadsThem(string declared, string expected) =>
        Assert.Equal(expected, PortProtocol.Of(declared).ToString());

    [Fact]
    public void APortWithoutADeclarationIsSniffed()
    {
        var service = new Service
        {
            Name = "s",
            Namespace = "ns",
            Hostname = "s.ns.svc.cluster.local",
            Ports = ImmutableDictionary<int, int>.Empty.Add(80, 8080).Add(3306, 3306),
            PortProtocols = ImmutableDictionary<int, string>.Empty.Add(3306, "mysql"),
        };
        Assert.Equal(DeclaredProtocol.Tcp, PortProtocol.Of(service, 3306));
        Assert.Equal(DeclaredProtocol.Undeclared, PortProtocol.Of(service, 80));
        Assert.Equal(DeclaredProtocol.Http, PortProtocol.Of(null, 3306)); // a workload address: not sniffed
    }
}
