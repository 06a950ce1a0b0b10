using Ambient.Mesh.Model;

namespace Ambient.Waypoint.Proxy;

/// <summary>
/// Which way the waypoint proxies a service port, read as Istio reads it: the port's <c>appProtocol</c> first, then
/// the name's <c>protocol[-suffix]</c> prefix (both already in <see cref="Service.PortProtocols"/>). HTTP-family
/// protocols (http, http2, grpc, grpc-web, h2c, ws) go through Kestrel and the HTTP routes; a declared protocol that is
/// anything else (tcp, tls, https, mongo, mysql, redis...) is relayed as TCP with L4 policy. A port that declares
/// nothing, or a name that is no protocol, stays on the HTTP path, where HTTP/1.1 and h2c are told apart by the
/// connection preface.
/// </summary>
internal static class PortProtocol
{
    /// <summary>True when the tunnel's destination port is declared as a non-HTTP protocol.</summary>
    public static bool IsTcp(Service? service, int port) =>
        service is not null && service.PortProtocols.TryGetValue(port, out var declared) && IsTcp(declared);

    /// <summary>Classifies one declared value (lower case): appProtocol as given, or a port name.</summary>
    internal static bool IsTcp(string declared)
    {
        // Kubernetes' standard appProtocol values name HTTP/2 cleartext and WebSocket.
        if (declared is "kubernetes.io/h2c" or "kubernetes.io/ws")
        {
            return false;
        }
        if (declared is "kubernetes.io/wss")
        {
            return true;
        }
        int dash = declared.IndexOf('-', StringComparison.Ordinal);
        string prefix = dash >= 0 ? declared[..dash] : declared;
        return prefix switch
        {
            "http" or "http2" or "http_proxy" or "grpc" or "grpc-web" or "h2c" or "ws" => false,
            "tcp" or "tls" or "https" or "mongo" or "mysql" or "redis" or "udp" => true,
            _ => false,
        };
    }
}
