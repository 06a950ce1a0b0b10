using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;
using Ambient.Waypoint.Authorization;
using Ambient.Waypoint.Hbone;
using Ambient.Waypoint.Routing;
using Ambient.Waypoint.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Proxy;

/// <summary>
/// A tunnel to a service port that declares a non-HTTP protocol (<see cref="PortProtocol"/>), or to an undeclared one
/// whose first bytes were not HTTP (<see cref="ProtocolSniffer"/>): no Kestrel, no routes.
/// The connection is authorized with the AuthorizationPolicies that target the waypoint's Gateway or the Service,
/// evaluated at L4 as ztunnel does (HTTP-only fields drop an ALLOW rule and are ignored in a DENY rule: stricter
/// than written, never looser); a denied CONNECT is answered 401 and reset, as ztunnel refuses. An allowed one gets
/// an endpoint from <see cref="EndpointPicker"/> (the DestinationRule's load balancer), an HBONE tunnel to it (the
/// destination's identity required), and the bytes are copied both ways, a half-close passed on as END_STREAM,
/// until both directions end. Each connection is counted in Istio's TCP metrics and logged once.
/// </summary>
internal sealed partial class TcpProxy(MeshStore store, WaypointIdentity identity, UpstreamConnector connector, EndpointPicker picker,
    WaypointMetrics metrics, AccessLog accessLog, ILogger<TcpProxy> logger)
{
    private const int BufferSize = 16 * 1024;
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Relays one admitted CONNECT stream whose destination port is TCP; returns when the connection ended.
    /// <paramref name="answered"/>: the tunnel was already answered 200 (its first bytes were sniffed, and whatever was
    /// read is still in <see cref="Http2Stream.Input"/>), so a refusal can only reset it.
    /// </summary>
    public async Task ServeAsync(Http2Stream inbound, TunnelInfo tunnel, bool answered = false)
    {
        long start = Stopwatch.GetTimestamp();
        var snapshot = store.Current;
        var service = tunnel.Service!;
        var decision = Authorize(snapshot, tunnel);
        if (!decision.Allowed)
        {
            await RefuseAsync(inbound, 401, answered).ConfigureAwait(false);
            Finish(tunnel, null, "DENY", 0, 0, start, null, decision.Reason);
            LogDenied(logger, tunnel.Peer.ToString(), tunnel.Authority.ToString(), decision.Reason);
            return;
        }
        var picked = picker.Pick(snapshot, new Backend(service, tunnel.Authority.Port, null, null), new DefaultHttpContext().Request, tunnel.Client.Address);
        if (picked is not { } endpoint)
        {
            await RefuseAsync(inbound, 503, answered).ConfigureAwait(false);
            Finish(tunnel, null, "UH", 0, 0, start, null, $"service {service.Hostname} has no healthy endpoint");
            return;
        }
        var upstreamAddress = new IPEndPoint(endpoint.Address, endpoint.Port);
        IEnd upstream;
        try
        {
            upstream = await ConnectAsync(snapshot, endpoint.Workload, upstreamAddress).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HboneException or SocketException or OperationCanceledException or IOException)
        {
            endpoint.Load?.Release();
            await RefuseAsync(inbound, 503, answered).ConfigureAwait(false);
            Finish(tunnel, endpoint.Workload, "UF", 0, 0, start, upstreamAddress.ToString(), ex.Message);
            return;
        }
        string labels = WaypointMetrics.TcpLabels(tunnel, endpoint.Workload, service, "-");
        metrics.TcpOpened(labels);
        long received = 0, sent = 0;
        string? error = null;
        using var client = new StreamEnd(inbound);
        try
        {
            if (!answered)
            {
                await inbound.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None).ConfigureAwait(false);
            }
            var toServer = CopyAsync(client, upstream, n => Interlocked.Add(ref received, n));
            var toClient = CopyAsync(upstream, client, n => Interlocked.Add(ref sent, n));
            // The first failure resets both sides: the other direction must not wait for an end that never comes.
            var first = await Task.WhenAny(toServer, toClient).ConfigureAwait(false);
            error = await first.ConfigureAwait(false);
            if (error is not null)
            {
                client.Abort();
                upstream.Abort();
            }
            error ??= await (first == toServer ? toClient : toServer).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or Http2StreamException)
        {
            error = ex.Message;
            inbound.Reset(Http2ErrorCode.Cancel);
            upstream.Abort();
        }
        finally
        {
            endpoint.Load?.Release();
            upstream.Dispose();
        }
        string flags = error is null ? "-" : "UC";
        metrics.TcpClosed(labels, Interlocked.Read(ref received), Interlocked.Read(ref sent));
        accessLog.WriteTcp(tunnel, flags, Interlocked.Read(ref received), Interlocked.Read(ref sent), Stopwatch.GetElapsedTime(start).TotalMilliseconds, upstreamAddress.ToString(), error);
    }

    /// <summary>
    /// The Gateway's and the Service's policies at L4: an ALLOW (or AUDIT) rule that needs HTTP is dropped (it can
    /// never match a byte stream), a DENY rule keeps only its L4 part, as the mesh's ztunnel translation does.
    /// </summary>
    internal L7Decision Authorize(Mesh.State.MeshSnapshot snapshot, TunnelInfo tunnel)
    {
        var policies = L7Authorizer.Applicable(snapshot, identity, tunnel.Service);
        for (int i = 0; i < policies.Count; i++)
        {
            policies[i] = AtL4(policies[i]);
        }
        return L7Authorizer.Evaluate(policies, tunnel, tunnel.Service, new DefaultHttpContext().Request);
    }

    internal static IstioAuthorizationPolicy AtL4(IstioAuthorizationPolicy p)
    {
        var rules = new List<IstioAuthorizationRule>(p.Rules.Length);
        foreach (var rule in p.Rules)
        {
            bool hasL7 = rule.From.Any(f => f.L7Fields().Any()) || rule.To.Any(t => t.L7Fields().Any()) || rule.When.Any(c => !c.IsL4);
            if (!hasL7)
            {
                rules.Add(rule);
            }
            else if (p.Action is AuthorizationAction.Deny or AuthorizationAction.Custom)
            {
                rules.Add(rule with
                {
                    From = [.. rule.From.Select(f => f with { RequestPrincipals = [], NotRequestPrincipals = [], RemoteIpBlocks = [], NotRemoteIpBlocks = [] })],
                    To = [.. rule.To.Select(t => t with { Hosts = [], NotHosts = [], Methods = [], NotMethods = [], Paths = [], NotPaths = [] })],
                    When = [.. rule.When.Where(c => c.IsL4)],
                });
            }
        }
        return p with { Rules = [.. rules] };
    }

    private async Task<IEnd> ConnectAsync(Mesh.State.MeshSnapshot snapshot, Workload workload, IPEndPoint endpoint)
    {
        using var timeout = new CancellationTokenSource(ConnectTimeout);
        if (workload.Protocol != InboundProtocol.Hbone)
        {
            return new SocketEnd(await connector.ConnectPlainAsync(endpoint, timeout.Token).ConfigureAwait(false));
        }
        var tunnel = await connector.OpenTunnelAsync(snapshot, workload, endpoint, timeout.Token).ConfigureAwait(false);
        return new StreamEnd(tunnel.Stream);
    }

    private static async Task RefuseAsync(Http2Stream stream, int status, bool answered)
    {
        if (answered)
        {
            // Too late for a status: the client only learns that the tunnel ended abruptly.
            stream.Reset(Http2ErrorCode.ConnectError);
            return;
        }
        try
        {
            await stream.SendResponseHeadersAsync(status, null, endStream: true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or Http2StreamException)
        {
        }
        stream.Reset(Http2ErrorCode.NoError);
    }

    private void Finish(TunnelInfo tunnel, Workload? destination, string flags, long received, long sent, long start, string? upstream, string detail)
    {
        string labels = WaypointMetrics.TcpLabels(tunnel, destination, tunnel.Service, flags);
        metrics.TcpOpened(labels);
        metrics.TcpClosed(labels, received, sent);
        accessLog.WriteTcp(tunnel, flags, received, sent, Stopwatch.GetElapsedTime(start).TotalMilliseconds, upstream, detail);
    }

    /// <summary>One direction: reads until the source ends, then half-closes the sink. Returns the error, or null.</summary>
    private static async Task<string?> CopyAsync(IEnd from, IEnd to, Action<int> counted)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                int n = await from.ReadAsync(buffer).ConfigureAwait(false);
                if (n == 0)
                {
                    await to.CompleteWritesAsync().ConfigureAwait(false);
                    return null;
                }
                await to.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                counted(n);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException or Http2StreamException or OperationCanceledException)
        {
            return ex.Message;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>One side of the relay: an HBONE stream, or a plain socket to an endpoint outside the mesh.</summary>
    private interface IEnd : IDisposable
    {
        ValueTask<int> ReadAsync(Memory<byte> buffer);

        ValueTask WriteAsync(ReadOnlyMemory<byte> data);

        /// <summary>Passes a half-close on: END_STREAM, or shutdown(SHUT_WR).</summary>
        ValueTask CompleteWritesAsync();

        void Abort();
    }

    private sealed class StreamEnd(Http2Stream stream) : IEnd
    {
        public async ValueTask<int> ReadAsync(Memory<byte> buffer)
        {
            var input = stream.Input;
            while (true)
            {
                ReadResult result = await input.ReadAsync().ConfigureAwait(false);
                var data = result.Buffer;
                if (!data.IsEmpty)
                {
                    int n = (int)Math.Min(data.Length, buffer.Length);
                    data.Slice(0, n).CopyTo(buffer.Span);
                    input.AdvanceTo(data.GetPosition(n));
                    return n;
                }
                input.AdvanceTo(data.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    return 0;
                }
            }
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data) => stream.WriteAsync(data, CancellationToken.None);

        public ValueTask CompleteWritesAsync() => stream.CompleteWritesAsync(CancellationToken.None);

        public void Abort() => stream.Reset(Http2ErrorCode.ConnectError);

        public void Dispose() => stream.Input.Complete();
    }

    private sealed class SocketEnd(Socket socket) : IEnd
    {
        public ValueTask<int> ReadAsync(Memory<byte> buffer) => socket.ReceiveAsync(buffer, SocketFlags.None);

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data)
        {
            while (!data.IsEmpty)
            {
                int n = await socket.SendAsync(data, SocketFlags.None).ConfigureAwait(false);
                data = data[n..];
            }
        }

        public ValueTask CompleteWritesAsync()
        {
            socket.Shutdown(SocketShutdown.Send);
            return ValueTask.CompletedTask;
        }

        public void Abort()
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Dispose();
        }

        public void Dispose() => socket.Dispose();
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "TCP connection {Peer} -> {Authority} denied: {Reason}")]
    private static partial void LogDenied(ILogger logger, string peer, string authority, string reason);
}
