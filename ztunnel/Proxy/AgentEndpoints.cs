using System.Collections.Immutable;
using System.Net;
using System.Net.NetworkInformation;
using Ambient.Ztunnel.Sockets;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// Every address the agent listens on in its own network namespace: the proxy ports and the admin, metrics and
/// readiness ports. A connection the agent would make on a client's behalf (SOCKS5, captured outbound in shared mode)
/// must never reach one of them: through SOCKS5 any client could otherwise POST /quitquitquit or read /config_dump
/// (issue 13), and a captured connection to the agent's own port would loop.
/// </summary>
internal sealed class AgentEndpoints
{
    private ImmutableArray<IPEndPoint> _endpoints = [];

    public void Add(IPEndPoint endpoint) =>
        ImmutableInterlocked.Update(ref _endpoints, static (list, ep) => list.Add(SocketOptions.Normalize(ep)), endpoint);

    public ImmutableArray<IPEndPoint> All => _endpoints;

    /// <summary>True when <paramref name="endpoint"/> is exactly one of the listeners' bound addresses.</summary>
    public bool Contains(IPEndPoint endpoint)
    {
        var ep = SocketOptions.Normalize(endpoint);
        foreach (var l in _endpoints)
        {
            if (l.Equals(ep))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// True when connecting to <paramref name="destination"/> from the agent's namespace would reach one of its
    /// listeners: the same address and port; any local address on the port of a listener bound to a wildcard
    /// (0.0.0.0:15020 accepts on 127.0.0.1, 127.9.9.9 and every interface address alike); and the unspecified address,
    /// which Linux connects to the local host.
    /// </summary>
    public bool IsAgentItself(IPEndPoint destination)
    {
        var d = SocketOptions.Normalize(destination);
        bool unspecified = d.Address.Equals(IPAddress.Any) || d.Address.Equals(IPAddress.IPv6Any);
        bool? local = null;
        foreach (var l in _endpoints)
        {
            if (l.Port != d.Port)
            {
                continue;
            }
            if (unspecified || l.Address.Equals(d.Address))
            {
                return true;
            }
            bool wildcard = l.Address.Equals(IPAddress.Any) || l.Address.Equals(IPAddress.IPv6Any);
            bool sameFamily = l.AddressFamily == d.AddressFamily || l.Address.Equals(IPAddress.IPv6Any);
            if (wildcard && sameFamily && (local ??= IsLocalAddress(d.Address)))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Loopback (all of 127.0.0.0/8 on Linux) or an address of one of this namespace's interfaces.</summary>
    private static bool IsLocalAddress(IPAddress address)
    {
        if (IPAddress.IsLoopback(address))
        {
            return true;
        }
        // Read only when a destination's port matches a wildcard listener, which ordinary traffic never does.
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                if (unicast.Address.Equals(address))
                {
                    return true;
                }
            }
        }
        return false;
    }
}
