using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Tls;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Hbone;

/// <summary>One CONNECT request that arrived over an authenticated HBONE connection.</summary>
public sealed record HboneInboundRequest(
    Http2Stream Stream,
    SpiffeId PeerIdentity,
    IPEndPoint RemoteEndPoint,
    IPEndPoint LocalEndPoint,
    WorkloadCertificate ServerCertificate);

/// <summary>
/// Serves one accepted 15008 connection: TLS 1.3 mTLS handshake (client chain checked against the trust bundle and
/// trust domain), then HTTP/2; every request stream is handed to the handler, which answers it.
/// </summary>
public static class HboneServer
{
    /// <summary>Runs until the connection closes. Never throws: failures are logged and returned as a reason.</summary>
    /// <param name="cancellationToken">Cancelled when the server drains: the connection gets GOAWAY and its streams finish.</param>
    /// <returns>Null when the connection ended normally, else why it was refused (for metrics and logs).</returns>
    public static async Task<string?> ServeAsync(
        Socket accepted,
        WorkloadCertificate serverCertificate,
        X509TrustBundle trust,
        Http2Options http2,
        TimeSpan handshakeTimeout,
        Func<HboneInboundRequest, Task> handler,
        Action<Http2Connection>? onConnection,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        var remote = (IPEndPoint)accepted.RemoteEndPoint!;
        var local = (IPEndPoint)accepted.LocalEndPoint!;
        accepted.NoDelay = true;
        var transport = new WriteCoalescingStream(accepted);
        var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
        await using (ssl.ConfigureAwait(false))
        {
            SpiffeId peer;
            try
            {
                var options = MeshTls.ServerOptions(serverCertificate, trust.Bundle, trust.TrustDomain);
                // Only the handshake's own deadline: a connection accepted before a drain began completes its
                // handshake and is then told GOAWAY, so the client retries elsewhere instead of seeing a reset.
                using var cts = new CancellationTokenSource(handshakeTimeout);
                await ssl.AuthenticateAsServerAsync(options, cts.Token).ConfigureAwait(false);
                transport.Coalesce = true;
                if (ssl.NegotiatedApplicationProtocol != SslApplicationProtocol.Http2)
                {
                    return "client did not negotiate ALPN h2";
                }
                if (MeshTls.PeerId(ssl) is not { } id)
                {
                    return "client certificate carries no SPIFFE identity";
                }
                peer = id;
            }
            catch (OperationCanceledException)
            {
                // Our own deadline, not a failure the client reported: say so rather than "The operation was canceled".
                string reason = $"TLS handshake not completed within {handshakeTimeout.TotalSeconds:0.###} s";
                HboneLog.HandshakeFailed(logger, remote, reason);
                return $"{reason} (client {remote})";
            }
            catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException or SocketException)
            {
                string reason = MeshTls.RejectionReason(ssl) ?? ex.GetBaseException().Message;
                HboneLog.HandshakeFailed(logger, remote, reason);
                return $"TLS handshake from {remote} failed: {reason}";
            }

            var connection = Http2Connection.CreateServer(
                ssl,
                http2,
                stream => handler(new HboneInboundRequest(stream, peer, remote, local, serverCertificate)),
                logger);
            await using (connection.ConfigureAwait(false))
            {
                onConnection?.Invoke(connection);
                connection.Start();
                using (cancellationToken.Register(static c => _ = ((Http2Connection)c!).ShutdownAsync().AsTask(), connection))
                {
                    await connection.Completion.ConfigureAwait(false);
                }
            }
            return null;
        }
    }
}

/// <summary>The trust anchors and the trust domain a server accepts clients from.</summary>
public sealed record X509TrustBundle(System.Security.Cryptography.X509Certificates.X509Certificate2Collection Bundle, string TrustDomain);
