using System.Net;
using System.Net.Sockets;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Sockets;
using Ambient.Ztunnel.State;
using Ambient.Ztunnel.Telemetry;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// The outbound path: a captured (or SOCKS5) connection from a local workload is resolved to its destination and
/// sent over HBONE (mTLS, the source's own identity) or, for a destination outside the mesh, as plain TCP.
/// A mesh (HBONE) destination never falls back to plaintext.
/// </summary>
internal sealed class Outbound(ProxyContext ctx)
{
    /// <summary>The upstream side once established: a tunnel, or a plain socket.</summary>
    internal sealed record Upstream(HboneTunnel? Tunnel, Socket? Socket);

    /// <summary>Handles a connection accepted on the outbound (15001) listener.</summary>
    public async Task HandleCapturedAsync(Socket client, ProxyScope scope)
    {
        var remote = SocketOptions.Normalize((IPEndPoint)client.RemoteEndPoint!);
        var original = SocketOptions.OriginalDestination(client);
        if (original is null)
        {
            Refuse(client, "no original destination (connection was not redirected)", "no_original_dst");
            return;
        }
        // In shared mode the agent's own ports are in this namespace; a pod's namespace has only the pod's listeners.
        bool self = scope.PodUid is null ? ctx.OwnEndpoints.IsAgentItself(original) : ctx.OwnEndpoints.Contains(original);
        if (self || (original.Port == ((IPEndPoint)client.LocalEndPoint!).Port && IPAddress.IsLoopback(original.Address)))
        {
            Refuse(client, $"original destination {original} is the agent itself", "loop");
            return;
        }
        var record = new ConnectionRecord("outbound", remote);
        var upstream = await ConnectAsync(record, original, scope, CancellationToken.None).ConfigureAwait(false);
        if (upstream is null)
        {
            Relay.Abort(client);
            return;
        }
        StartRelay(client, upstream, record);
    }

    /// <summary>
    /// Resolves and opens the upstream for <paramref name="original"/> on behalf of the client in
    /// <paramref name="record"/>. On failure closes the record (log + metrics) and returns null.
    /// </summary>
    public async Task<Upstream?> ConnectAsync(ConnectionRecord record, IPEndPoint original, ProxyScope scope, CancellationToken cancellationToken)
    {
        var snapshot = ctx.State.Current;
        record.Destination = original;
        var source = scope.Pod(snapshot) ?? snapshot.FindWorkloadByIp(record.Source.Address);
        if (source is null && ctx.OnDemand is not null)
        {
            snapshot = await ctx.DemandAsync(snapshot, record.Source.Address, "", cancellationToken).ConfigureAwait(false);
            source = scope.Pod(snapshot) ?? snapshot.FindWorkloadByIp(record.Source.Address);
        }
        if (source is null || !ctx.State.IsLocal(source))
        {
            Fail(record, "NR", source is null
                ? $"unknown source workload {record.Source.Address}: no workload with this address in the config"
                : $"source workload {source.Namespace}/{source.Name} is on node '{source.Node}', not this node");
            return null;
        }
        record.SourceWorkload = source;
        var sourceId = new SpiffeId(source.EffectiveTrustDomain(ctx.TrustDomain), source.Namespace, source.ServiceAccount);
        record.SourceIdentity = sourceId.ToString();

        if (ctx.OnDemand is not null && snapshot.FindServiceByVip(original.Address, source.Network) is null
            && snapshot.FindWorkloadByIp(original.Address, source.Network) is null)
        {
            // An address this agent has not been told about (on-demand xDS): ask, wait a bounded time, then resolve
            // with what the store holds; still unknown = passthrough, as without on-demand.
            snapshot = await ctx.DemandAsync(snapshot, original.Address, source.Network, cancellationToken).ConfigureAwait(false);
        }

        Route route;
        try
        {
            route = ctx.Resolver.Resolve(snapshot, original, source);
        }
        catch (RouteException ex)
        {
            Fail(record, ex.Flag, ex.Message);
            return null;
        }
        record.Destination = route.Destination;
        record.DestinationWorkload = route.DestinationWorkload;
        record.DestinationService = route.Service;

        if (route.Kind == RouteKind.Hbone)
        {
            record.HboneAddress = route.HboneEndpoint;
            record.DestinationIdentity = route.ExpectedIdentities[0];
            record.MutualTls = true;
            var headers = HboneHeaders.ForConnect(route.Authority!, record.Source, source);
            var target = new HboneTarget(route.HboneEndpoint!, route.Authority!, sourceId, route.ExpectedIdentities, source.WorkloadIps.IsDefaultOrEmpty ? null : record.Source.Address, scope.Sockets);
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(ctx.ConnectTimeout * 2);
                var tunnel = await ctx.Pool.ConnectAsync(target, headers, timeout.Token).ConfigureAwait(false);
                record.DestinationIdentity = tunnel.PeerIdentity.ToString();
                return new Upstream(tunnel, null);
            }
            catch (HboneException ex)
            {
                Fail(record, ex.ResponseFlag, ex.Message);
                return null;
            }
            catch (OperationCanceledException)
            {
                Fail(record, "CONNECT", $"HBONE tunnel to {route.HboneEndpoint} timed out");
                return null;
            }
        }

        // Plain TCP: the destination is not in the mesh (protocol TCP) or not known at all.
        var family = route.Destination.AddressFamily;
        Socket? owned = scope.Sockets is null ? new Socket(family, SocketType.Stream, ProtocolType.Tcp) : scope.Sockets(family);
        try
        {
            Socket socket = owned;
            socket.NoDelay = true;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(ctx.ConnectTimeout);
            await socket.ConnectAsync(route.Destination, timeout.Token).ConfigureAwait(false);
            owned = null;
            return new Upstream(null, socket);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            Fail(record, "CONNECT", $"connect to {route.Destination} failed: {(ex is SocketException se ? se.SocketErrorCode.ToString() : "timed out")}");
            return null;
        }
        finally
        {
            owned?.Dispose();
        }
    }

    /// <summary>
    /// Starts relaying and returns: when both directions have ended the relay closes its sockets and the record is
    /// closed (log, metrics). Nothing waits on an open connection.
    /// </summary>
    public void StartRelay(Socket client, Upstream upstream, ConnectionRecord record)
    {
        record.Open(ctx.Metrics);
        var tracked = ctx.Tracker.Register(record);
        Action<string?> finished = error => tracked.Finish(error, ctx.Metrics, ctx.AccessLog);
        tracked.Attach(upstream.Tunnel is { } tunnel
            ? Relay.StartSocketToStream(client, tunnel.Stream, record, socketIsClient: true, finished)
            : Relay.StartSocketToSocket(client, upstream.Socket!, record, finished));
    }

    private void Fail(ConnectionRecord record, string flag, string error)
    {
        record.ResponseFlags = flag;
        ProxyLog.OutboundRefused(ctx.Logger, record.Source, record.Destination, error);
        record.Close(ctx.Metrics, ctx.AccessLog, error);
    }

    private void Refuse(Socket client, string why, string reason)
    {
        ctx.Refusals.Refuse("outbound", reason, $"outbound connection from {client.RemoteEndPoint} refused: {why}");
        Relay.Abort(client);
    }
}
