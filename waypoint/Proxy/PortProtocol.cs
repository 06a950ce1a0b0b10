using Ambient.Mesh.Model;

namespace Ambient.Waypoint.Proxy;

/// <summary>What a service port declares about its protocol, as far as the waypoint cares.</summary>
internal enum DeclaredProtocol
{
    /// <summary>An HTTP-family protocol: Kestrel and the HTTP routes.</summary>
    Http,

    /// <summary>Any other declared protocol: relayed as bytes with L4 policy, never parsed.</summary>
    Tcp,

    /// <summary>Nothing (or a name that is no protocol): the first bytes decide (<see cref="ProtocolSniffer"/>).</summary>
    Undeclared,
}

/// <summary>
/// Which way the waypoint proxies a service port, read as Istio reads it: the port's <c>appProtocol</c> first, then
/// the name's <c>protocol[-suffix]</c> prefix (both already in <see cref="Service.PortProtocols"/>). HTTP-family
/// protocols (http, http2, grpc, grpc-web, h2c, ws) go through Kestrel and the HTTP routes; a declared protocol that is
/// anything else (tcp, tls, https, mongo, mysql, redis...) is relayed as TCP with L4 policy. A port that declares
/// nothing, or a name that is no protocol, is sniffed, as Istio's waypoint does for such ports.
/// </summary>
internal static class PortProtocol
{
    /// <summary>
    /// The declaration of the tunnel's destination port. A tunnel to a workload address (no Service) stays on the HTTP
    /// path as before: sniffing it would need the TCP relay to address the pod directly, which is not built yet.
    /// </summary>
    public static DeclaredProtocol Of(Service? service, int port) =>
        service is null ? DeclaredProtocol.Http
        : service.PortProtocols.TryGetValue(port, out var declared) ? Of(declared) : DeclaredProtocol.Undeclared;

    /// <summary>Classifies one declared value (lower case): appProtocol as given, or a port name.</summary>
    internal static DeclaredProtocol Of(string declared)
    {
        // Kubernetes' standard appProtocol values name HTTP/2 cleartext and WebSocket.
        if (declared is "kubernetes.io/h2c" or "kubernetes.io/ws")
        {
            return DeclaredProtocol.Http;
        }
        if (declared is "kubernetes.io/wss")
        {
            return DeclaredProtocol.Tcp;
        }
        int dash = declared.IndexOf('-', StringComparison.Ordinal);
        string prefix = dash >= 0 ? declared[..dash] : declared;
        return prefix switch
        {
            "http" or "http2" or "http_proxy" or "grpc" or "grpc-web" or "h2c" or "ws" => DeclaredProtocol.Http,
            "tcp" or "tls" or "https" or "mongo" or "mysql" or "redis" or "udp" => DeclaredProtocol.Tcp,
            _ => DeclaredProtocol.Undeclared,
        };
    }
}
