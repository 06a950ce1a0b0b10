using System.Buffers;
using System.Net;
using System.Text;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Identity;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Waypoint.Tests.Support;

/// <summary>
/// A test client that speaks HBONE to the waypoint directly, as the client's ztunnel would, and then writes raw bytes
/// into the tunnel: for requests no well-behaved client library will send.
/// </summary>
internal sealed class RawTunnel : IAsyncDisposable
{
    private readonly CertificateAuthority _ca;
    private readonly CertificateManager _certificates;
    private readonly HbonePool _pool;
    private readonly WaypointMesh _mesh;

    public RawTunnel(WaypointMesh mesh)
    {
        _mesh = mesh;
        _ca = CertificateAuthority.LoadOrCreate(null, null, mesh.Dir, "cluster.local");
        _certificates = new CertificateManager(_ca, TimeSpan.FromHours(1), TimeProvider.System, NullLogger.Instance);
        _pool = new HbonePool(_certificates, new HbonePoolOptions(), NullLogger.Instance);
    }

    /// <summary>Opens a tunnel to <paramref name="authority"/> as <paramref name="source"/> (default: the client pod).</summary>
    public async Task<Http2Stream> OpenAsync(string authority, SpiffeId? source = null)
    {
        var target = new HboneTarget(new IPEndPoint(_mesh.WaypointIp, 15008), authority, source ?? new SpiffeId("cluster.local", "shop", "client"),
            ["spiffe://cluster.local/ns/shop/sa/waypoint"], _mesh.Client);
        var tunnel = await _pool.ConnectAsync(target, HboneHeaders.ForConnect(authority, new IPEndPoint(_mesh.Client, 1234), null), CancellationToken.None)
            .AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        return tunnel.Stream;
    }

    /// <summary>Writes <paramref name="request"/> into a new tunnel to the echo service; returns what comes back until the waypoint ends the stream (or 5 s pass).</summary>
    public async Task<string> SendAsync(string request)
    {
        var stream = await OpenAsync($"{_mesh.Vip}:80");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        var received = new StringBuilder();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            while (true)
            {
                var result = await stream.Input.ReadAsync(timeout.Token);
                foreach (var segment in result.Buffer)
                {
                    received.Append(Encoding.ASCII.GetString(segment.Span));
                }
                stream.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or Http2StreamException)
        {
            // The waypoint kept the connection open (a keep-alive after a complete answer) or reset it.
        }
        stream.Reset(Http2ErrorCode.Cancel);
        return received.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        await _pool.DisposeAsync();
        await _certificates.DisposeAsync();
        _ca.Dispose();
    }
}
