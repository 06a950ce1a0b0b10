using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Identity;
using Ambient.Ztunnel.State;
using Ambient.Ztunnel.Telemetry;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Proxy;

/// <summary>What every proxy path shares: state, identities, the HBONE pool, telemetry.</summary>
internal sealed class ProxyContext
{
    public required MeshState State { get; init; }
    public required Resolver Resolver { get; init; }
    public required CertificateManager Certificates { get; init; }
    public required HbonePool Pool { get; init; }
    public required MeshMetrics Metrics { get; init; }
    public required AccessLog AccessLog { get; init; }
    public required ConnectionTracker Tracker { get; init; }
    public required ILogger Logger { get; init; }
    /// <summary>The agent's restart-only settings (never read through the snapshot).</summary>
    public required AgentSettings Settings { get; init; }
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Cancelled when the agent starts draining: servers send GOAWAY, listeners stop.</summary>
    public CancellationToken Stopping { get; init; }

    public Mesh.Http2.Http2Options Http2 { get; init; } = new();

    /// <summary>The agent's own listeners (proxy, admin, metrics, readiness): never a destination on a client's behalf.</summary>
    public AgentEndpoints OwnEndpoints { get; } = new();

    /// <summary>Refusals before attribution: counted exactly, logged without flooding.</summary>
    public required RefusalLog Refusals { get; init; }

    /// <summary>Closes server-side HBONE connections left without a stream (hboneIdleTimeout).</summary>
    public required IdleHboneReaper IdleHbone { get; init; }

    /// <summary>DNS for SOCKS5 names that are not mesh services (a seam for tests: a lookup must not leave the machine).</summary>
    public Func<string, CancellationToken, Task<IPAddress[]>> ResolveHost { get; init; } = Dns.GetHostAddressesAsync;

    /// <summary>The xDS source when it serves addresses on demand (XDS_ON_DEMAND); null otherwise.</summary>
    public Mesh.Sources.Xds.XdsSource? OnDemand { get; init; }

    /// <summary>
    /// For an address <paramref name="snapshot"/> lacks: asks the control plane for it (on-demand xDS; a bounded wait)
    /// and returns the store's view after the answer. Without on-demand, <paramref name="snapshot"/> unchanged.
    /// </summary>
    public async ValueTask<Mesh.State.MeshSnapshot> DemandAsync(Mesh.State.MeshSnapshot snapshot, IPAddress address, string network, CancellationToken cancellationToken)
    {
        if (OnDemand is not { OnDemand: true } xds)
        {
            return snapshot;
        }
        try
        {
            await xds.DemandAddressAsync(address, network, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The connection is going away; it ends on what the store holds, like any other.
        }
        return State.Current;
    }

    public string TrustDomain => Settings.TrustDomain;

    public X509TrustBundle Trust => new(Certificates.Issuer.TrustBundle, TrustDomain);
}
