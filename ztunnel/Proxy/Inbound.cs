using System.Net;
using System.Net.Sockets;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Model;
using Ambient.Mesh.Policy;
using Ambient.Mesh.State;
using Ambient.Ztunnel.Sockets;
using Ambient.Ztunnel.Telemetry;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// The inbound paths: HBONE on 15008 (mTLS; the peer's SPIFFE id is the principal) and captured plaintext on 15006
/// (principal unknown). Both find the local destination workload, apply L4 authorization, connect to the
/// workload and relay. A denied HBONE CONNECT is answered 401; a denied plaintext connection is reset.
/// </summary>
internal sealed class Inbound(ProxyContext ctx)
{
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    public async Task HandleHboneAsync(Socket accepted, ProxyScope scope)
    {
        var local = SocketOptions.Normalize((IPEndPoint)accepted.LocalEndPoint!);
        var snapshot = ctx.State.Current;
        var server = scope.Pod(snapshot) ?? snapshot.FindWorkloadByIp(local.Address);
        if (server is null && ctx.OnDemand is not null)
        {
            snapshot = await ctx.DemandAsync(snapshot, local.Address, "", CancellationToken.None).ConfigureAwait(false);
            server = scope.Pod(snapshot) ?? snapshot.FindWorkloadByIp(local.Address);
        }
        if (server is null || !ctx.State.IsLocal(server))
        {
            Refuse(accepted, "hbone", "unknown_destination", $"no local workload has address {local.Address}");
            return;
        }
        WorkloadCertificate cert;
        try
        {
            var id = new SpiffeId(server.EffectiveTrustDomain(ctx.TrustDomain), server.Namespace, server.ServiceAccount);
            // Not cancelled by a drain: the connection was accepted before it and is served to the end.
            using var timeout = new CancellationTokenSource(HandshakeTimeout);
            cert = await ctx.Certificates.GetAsync(id, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Refuse(accepted, "hbone", "identity", $"no certificate for {server.Namespace}/{server.Name}: {ex.Message}");
            return;
        }

        string? refusal = await HboneServer.ServeAsync(
            accepted,
            cert,
            ctx.Trust,
            ctx.Http2,
            HandshakeTimeout,
            request => HandleStreamAsync(request, scope),
            ctx.IdleHbone.Track,
            ctx.Logger,
            ctx.Stopping).ConfigureAwait(false);
        if (refusal is not null)
        {
            ctx.Refusals.Refuse("hbone", "tls_handshake", $"HBONE connection to {local} refused: {refusal}");
        }
    }

    private async Task HandleStreamAsync(HboneInboundRequest request, ProxyScope scope)
    {
        var stream = request.Stream;
        var headers = stream.RequestHeaders;
        var remote = SocketOptions.Normalize(request.RemoteEndPoint);
        var forwarded = HboneHeaders.ParseForwardedFor(HboneHeaders.Get(headers, HboneHeaders.Forwarded));
        var record = new ConnectionRecord("inbound", forwarded is not null && forwarded.Address.Equals(remote.Address) ? forwarded : remote)
        {
            SourceIdentity = request.PeerIdentity.ToString(),
            DestinationIdentity = request.ServerCertificate.Id.ToString(),
            MutualTls = true,
        };
        var snapshot = ctx.State.Current;
        record.SourceWorkload = snapshot.FindWorkloadByIp(remote.Address);

        if (HboneHeaders.Get(headers, ":method") != "CONNECT")
        {
            await RejectAsync(stream, record, 400, "-", "bad request: HBONE accepts only CONNECT").ConfigureAwait(false);
            return;
        }
        string? authority = HboneHeaders.Get(headers, ":authority");
        if (!HboneHeaders.TryParseAuthority(authority, out var target))
        {
            await RejectAsync(stream, record, 400, "-", $"bad request: :authority '{authority}' is not ip:port").ConfigureAwait(false);
            return;
        }
        target = SocketOptions.Normalize(target);
        record.Destination = target;
        var destination = snapshot.FindWorkloadByIp(target.Address);
        if (destination is null || !ctx.State.IsLocal(destination) || (scope.PodUid is not null && destination.Uid != scope.PodUid))
        {
            await RejectAsync(stream, record, 400, "NR", $"bad request: {target.Address} is not a workload on this node").ConfigureAwait(false);
            return;
        }
        record.DestinationWorkload = destination;
        if (request.ServerCertificate.Id.ToString() != destination.SpiffeId(ctx.TrustDomain))
        {
            // The client reached us under another workload's identity: it verified the wrong SAN for this target.
            await RejectAsync(stream, record, 400, "NR", $"bad request: {target.Address} is not served under identity {request.ServerCertificate.Id}").ConfigureAwait(false);
            return;
        }

        if (WaypointViolation(snapshot, destination, request.PeerIdentity) is { } waypointError)
        {
            await RejectAsync(stream, record, 401, "DENY", waypointError).ConfigureAwait(false);
            return;
        }

        var info = new ConnectionInfo(remote.Address, target.Address, target.Port, request.PeerIdentity.Principal, request.PeerIdentity.Namespace, request.PeerIdentity.ServiceAccount);
        var decision = Authorizer.Evaluate(snapshot, destination, info);
        LogDryRun(decision, record);
        if (!decision.Allowed)
        {
            await RejectAsync(stream, record, 401, "DENY", $"denied by authorization policy: {decision.Describe()}").ConfigureAwait(false);
            return;
        }

        var (upstream, connectError) = await ConnectUpstreamAsync(scope, target).ConfigureAwait(false);
        if (upstream is null)
        {
            await RejectAsync(stream, record, 503, "CONNECT", connectError!).ConfigureAwait(false);
            return;
        }

        try
        {
            await stream.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            upstream.Dispose();
            record.Close(ctx.Metrics, ctx.AccessLog, $"client went away before the tunnel opened: {ex.Message}");
            return;
        }

        record.Open(ctx.Metrics);
        var tracked = ctx.Tracker.Register(record, destination.Uid, info);
        // The handler returns now; the relay closes the upstream, and then the record, when the tunnel ends.
        tracked.Attach(Relay.StartSocketToStream(upstream, stream, record, socketIsClient: false, error => tracked.Finish(error, ctx.Metrics, ctx.AccessLog)));
    }

    /// <summary>Captured plaintext on 15006: the source is outside the mesh (or not captured), so its principal is unknown.</summary>
    public async Task HandlePlaintextAsync(Socket client, ProxyScope scope)
    {
        var remote = SocketOptions.Normalize((IPEndPoint)client.RemoteEndPoint!);
        var local = SocketOptions.Normalize((IPEndPoint)client.LocalEndPoint!);
        // REDIRECT keeps the original destination in conntrack; TPROXY leaves it as the socket's local address.
        var original = SocketOptions.OriginalDestination(client) ?? local;
        if (ctx.OwnEndpoints.Contains(original) || original.Equals(local) && IsOwnListenerPort(local.Port))
        {
            Refuse(client, "inbound", "no_original_dst", $"connection from {remote} to {original} was not captured (no original destination)");
            return;
        }
        var snapshot = ctx.State.Current;
        var record = new ConnectionRecord("inbound", remote) { Destination = original };
        record.SourceWorkload = snapshot.FindWorkloadByIp(remote.Address);
        var destination = snapshot.FindWorkloadByIp(original.Address);
        if (destination is null || !ctx.State.IsLocal(destination) || (scope.PodUid is not null && destination.Uid != scope.PodUid))
        {
            record.ResponseFlags = "NR";
            record.Close(ctx.Metrics, ctx.AccessLog, $"{original.Address} is not a workload on this node");
            Relay.Abort(client);
            return;
        }
        record.DestinationWorkload = destination;
        // PeerAuthentication comes before authorization, as in Istio: under STRICT a plaintext peer is refused whatever
        // the policies say, since it could be anyone.
        var mtls = snapshot.PeerAuthentication.PlaintextAllowed(destination, original.Port);
        if (!mtls.Allowed)
        {
            string why = $"plaintext from {remote} to {destination.Namespace}/{destination.Name} port {original.Port} refused: {mtls.Describe()} requires HBONE";
            ctx.Refusals.Refuse("inbound", "mtls_strict", why);
            record.ResponseFlags = "DENY";
            record.Close(ctx.Metrics, ctx.AccessLog, why);
            Relay.Abort(client);
            return;
        }
        var info = new ConnectionInfo(remote.Address, original.Address, original.Port, null, null, null);
        var decision = Authorizer.Evaluate(snapshot, destination, info);
        LogDryRun(decision, record);
        if (!decision.Allowed)
        {
            record.ResponseFlags = "DENY";
            record.Close(ctx.Metrics, ctx.AccessLog, $"denied by authorization policy: {decision.Describe()}");
            Relay.Abort(client);
            return;
        }

        var (upstream, connectError) = await ConnectUpstreamAsync(scope, original).ConfigureAwait(false);
        if (upstream is null)
        {
            record.ResponseFlags = "CONNECT";
            record.Close(ctx.Metrics, ctx.AccessLog, connectError);
            Relay.Abort(client);
            return;
        }
        record.Open(ctx.Metrics);
        var tracked = ctx.Tracker.Register(record, destination.Uid, info);
        tracked.Attach(Relay.StartSocketToSocket(client, upstream, record, error => tracked.Finish(error, ctx.Metrics, ctx.AccessLog)));
    }

    /// <summary>Connects to the local workload (from inside its pod in in-pod mode, with the agent's mark).</summary>
    private async Task<(Socket? Socket, string? Error)> ConnectUpstreamAsync(ProxyScope scope, IPEndPoint target)
    {
        Socket? owned = scope.Sockets is null ? new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) : scope.Sockets(target.AddressFamily);
        try
        {
            Socket upstream = owned;
            upstream.NoDelay = true;
            using var timeout = new CancellationTokenSource(ctx.ConnectTimeout);
            await upstream.ConnectAsync(target, timeout.Token).ConfigureAwait(false);
            owned = null;
            return (upstream, null);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            return (null, $"upstream connect to {target} failed: {(ex is SocketException se ? se.SocketErrorCode.ToString() : "timed out")}");
        }
        finally
        {
            owned?.Dispose();
        }
    }

    /// <summary>
    /// A destination that has a waypoint accepts mesh traffic only from that waypoint: anything else skipped the
    /// L7 policy the waypoint enforces.
    /// </summary>
    private string? WaypointViolation(MeshSnapshot snapshot, Workload destination, SpiffeId peer)
    {
        if (destination.Waypoint is not { } gateway)
        {
            return null;
        }
        var waypoint = State.WaypointChoice.Find(snapshot, gateway);
        if (waypoint is null)
        {
            return $"destination {destination.Namespace}/{destination.Name} requires a waypoint that is not in the config";
        }
        string expected = waypoint.SpiffeId(ctx.TrustDomain);
        return peer.ToString() == expected ? null : $"destination {destination.Namespace}/{destination.Name} accepts traffic only through its waypoint ({expected}), not from {peer}";
    }

    private void LogDryRun(in AuthorizationDecision decision, ConnectionRecord record)
    {
        if (!decision.DryRunMatches.IsDefaultOrEmpty)
        {
            ProxyLog.DryRun(ctx.Logger, string.Join(",", decision.DryRunMatches), record.Source, record.Destination);
        }
    }

    private async Task RejectAsync(Http2Stream stream, ConnectionRecord record, int status, string flag, string error)
    {
        record.ResponseFlags = flag;
        try
        {
            await stream.SendResponseHeadersAsync(status, null, endStream: true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
        }
        // The answer is complete: free the stream now rather than wait for the client to end its side, so a client
        // that never does can't fill its connection's stream limit with refused tunnels (RFC 9113 section 8.1).
        stream.Reset(Http2ErrorCode.NoError);
        record.Close(ctx.Metrics, ctx.AccessLog, error);
    }

    private bool IsOwnListenerPort(int port) =>
        port == ctx.Settings.Listeners.Inbound.Port || port == ctx.Settings.Listeners.Outbound.Port || port == ctx.Settings.Listeners.Hbone.Port;

    private void Refuse(Socket socket, string listener, string reason, string why)
    {
        ctx.Refusals.Refuse(listener, reason, $"{listener} connection refused: {why}");
        Relay.Abort(socket);
    }
}
