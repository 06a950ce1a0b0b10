using System.Net;
using Ambient.Ztunnel.Proxy;

namespace Ambient.Ztunnel.Tests.Proxy;

/// <summary>Which destinations are the agent itself (issue 13, finding 3); no traffic, only the decision.</summary>
public sealed class AgentEndpointsTests
{
    private static AgentEndpoints Endpoints()
    {
        var e = new AgentEndpoints();
        e.Add(IPEndPoint.Parse("127.0.0.1:15000"));  // admin on loopback
        e.Add(IPEndPoint.Parse("0.0.0.0:15020"));    // metrics on every address
        e.Add(IPEndPoint.Parse("[::]:15021"));       // readiness, dual-mode
        return e;
    }

    [Theory]
    [InlineData("127.0.0.1:15000", true)]
    [InlineData("0.0.0.0:15000", true)]            // Linux connects the unspecified address to the local host
    [InlineData("127.0.0.2:15000", false)]         // another loopback address: nothing of ours listens there
    [InlineData("127.0.0.1:15020", true)]
    [InlineData("127.33.4.5:15020", true)]         // all of 127.0.0.0/8 is local
    [InlineData("[::ffff:127.0.0.1]:15020", true)] // IPv4-mapped is the same address
    [InlineData("127.0.0.1:15021", true)]          // a dual-mode IPv6 wildcard covers IPv4 too
    [InlineData("[::1]:15021", true)]
    [InlineData("[::]:15001", false)]              // no listener on that port
    [InlineData("192.0.2.7:15020", false)]         // TEST-NET-1: not an address of this host (never dialled)
    [InlineData("127.0.0.1:8080", false)]
    public void Destination_is_the_agent_itself(string destination, bool self) =>
        Assert.Equal(self, Endpoints().IsAgentItself(IPEndPoint.Parse(destination)));
}
