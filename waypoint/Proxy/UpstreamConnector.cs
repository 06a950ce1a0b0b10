using System.Net;
using System.Net.Sockets;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;
using Ambient.Waypoint.Hbone;

namespace Ambient.Waypoint.Proxy;

/// <summary>
/// The forwarder's way out: a <c>SocketsHttpHandler</c> whose connections are HBONE tunnels. The handler pools HTTP
/// connections per destination <c>podIP:targetPort</c>; each one is a CONNECT stream to that pod's 15008, presenting
/// the waypoint's identity and requiring the pod's own (<see cref="HbonePool"/> multiplexes those streams onto
/// pooled mTLS connections). A destination outside the mesh (its workload speaks plain TCP) gets a plain socket.
/// </summary>
internal sealed class UpstreamConnector(MeshStore store, HbonePool pool, WaypointIdentity identity)
{
    public HttpMessageInvoker CreateInvoker() => new(CreateHandler(), disposeHandler: true);

    /// <summary>The pooled HBONE handler alone, for a caller that puts its own handler (retries) in front.</summary>
    /// <param name="connectTimeout">DestinationRule <c>tcp.connectTimeout</c> (the whole tunnel set-up); null: 10 s.</param>
    /// <param name="idleTimeout">DestinationRule <c>http.idleTimeout</c>; null: 1 min; infinite: never closed for idleness.</param>
    public SocketsHttpHandler CreateHandler(TimeSpan? connectTimeout = null, TimeSpan? idleTimeout = null) => new()
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ActivityHeadersPropagator = null,
        ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(10),
        PooledConnectionIdleTimeout = idleTimeout ?? TimeSpan.FromMinutes(1),
        ConnectCallback = ConnectAsync,
    };

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var endpoint = new IPEndPoint(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port);
        var snapshot = store.Current;
        var workload = snapshot.FindWorkloadByIp(endpoint.Address);
        if (workload is null || workload.Protocol != InboundProtocol.Hbone)
        {
            // Not in the mesh: Istio's waypoint sends plaintext to such endpoints too.
            return new NetworkStream(await ConnectPlainAsync(endpoint, cancellationToken).ConfigureAwait(false), ownsSocket: true);
        }
        try
        {
            var tunnel = await OpenTunnelAsync(snapshot, workload, endpoint, cancellationToken).ConfigureAwait(false);
            return new TunnelStream(tunnel.Stream);
        }
        catch (HboneException ex)
        {
            // The forwarder reports it as a connect failure (502, flag UF); the message says which step failed.
            throw new HttpRequestException(HttpRequestError.ConnectionError, ex.Message, ex);
        }
    }

    /// <summary>A plain TCP connection from the waypoint's address to an endpoint outside the mesh.</summary>
    internal async ValueTask<Socket> ConnectPlainAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            BindSource(socket, endpoint.AddressFamily);
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A pooled HBONE CONNECT to <paramref name="endpoint"/> (<c>podIP:targetPort</c>) via the pod's 15008, presenting
    /// the waypoint's identity and requiring <paramref name="workload"/>'s. Throws <see cref="HboneException"/>.
    /// </summary>
    internal async ValueTask<HboneTunnel> OpenTunnelAsync(MeshSnapshot snapshot, Workload workload, IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        string authority = HboneHeaders.FormatEndpoint(endpoint);
        var source = identity.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, 0) : new IPEndPoint(identity.Address, 0);
        var target = new HboneTarget(
            new IPEndPoint(endpoint.Address, HboneHeaders.HbonePort),
            authority,
            identity.Id,
            [workload.SpiffeId(identity.TrustDomain)],
            identity.Address.Equals(IPAddress.Any) ? null : identity.Address);
        var headers = HboneHeaders.ForConnect(authority, source, identity.Self(snapshot));
        return await pool.ConnectAsync(target, headers, cancellationToken).ConfigureAwait(false);
    }

    private void BindSource(Socket socket, AddressFamily family)
    {
        if (!identity.Address.Equals(IPAddress.Any) && identity.Address.AddressFamily == family)
        {
            try
            {
                socket.Bind(new IPEndPoint(identity.Address, 0));
            }
            catch (SocketException)
            {
            }
        }
    }
}
