using System.Net;

namespace Ambient.Waypoint.Hbone;

/// <summary>
/// The HBONE listener as Kestrel sees it: an endpoint only <see cref="HboneTransport"/> can bind, so Kestrel's socket
/// transport keeps the plain TCP ports (admin, metrics, readiness) and this one carries tunnels. There are two per
/// listening address, one per HTTP version: Kestrel speaks cleartext HTTP/2 (prior knowledge) only on an endpoint that
/// is HTTP/2-only, so the transport looks at each tunnel's first bytes and hands it to the matching one.
/// </summary>
internal sealed class HboneEndPoint(IPEndPoint address, bool http2) : EndPoint
{
    /// <summary>The TCP address of the mTLS listener (port 15008 by default).</summary>
    public IPEndPoint Address { get; } = address;

    /// <summary>Whether this endpoint takes the tunnels that open with the HTTP/2 connection preface.</summary>
    public bool Http2 { get; } = http2;

    /// <summary>After binding: the address actually bound (a port 0 becomes the kernel's choice).</summary>
    public IPEndPoint? Bound { get; set; }

    public override string ToString() => $"hbone://{Bound ?? Address}{(Http2 ? " (h2c)" : "")}";
}
