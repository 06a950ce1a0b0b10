namespace Ambient.Mesh.Hbone;

/// <summary>Why a tunnel could not be opened, in the vocabulary of Istio's <c>response_flags</c>.</summary>
public enum HboneFailure
{
    /// <summary>TCP connect to the peer's 15008 failed (Envoy/Istio: <c>CONNECT</c>, "UF").</summary>
    Connect,
    /// <summary>The TLS handshake failed: untrusted chain, wrong SAN, no h2 (Istio: <c>TLS_FAILURE</c>).</summary>
    Tls,
    /// <summary>No certificate could be had for the source identity (Istio: <c>IDENTITY_ERROR</c>).</summary>
    Identity,
    /// <summary>The peer answered 401: denied by authorization policy (<c>DENY</c>).</summary>
    Denied,
    /// <summary>The peer answered another non-200 status, e.g. 503 when its upstream is unreachable.</summary>
    Upstream,
    /// <summary>The HTTP/2 connection or stream failed.</summary>
    Protocol,
    Timeout,
}

public sealed class HboneException(HboneFailure failure, string message, Exception? inner = null, int status = 0)
    : Exception(message, inner)
{
    public HboneFailure Failure { get; } = failure;

    /// <summary>The HTTP status the peer answered with, when it answered.</summary>
    public int Status { get; } = status;

    /// <summary>The <c>response_flags</c> label Istio users graph.</summary>
    public string ResponseFlag => Failure switch
    {
        HboneFailure.Connect => "CONNECT",
        HboneFailure.Tls => "TLS_FAILURE",
        HboneFailure.Identity => "IDENTITY_ERROR",
        HboneFailure.Denied => "DENY",
        HboneFailure.Upstream => "CONNECT",
        HboneFailure.Timeout => "CONNECT",
        _ => "CONNECT",
    };
}
