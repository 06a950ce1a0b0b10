using Ambient.Mesh.Protos.Istio.Ca;
using Google.Protobuf;

namespace Ambient.Mesh.Identity;

/// <summary>A CreateCertificate request as a server reads it (the generated protobuf types stay internal to this library).</summary>
public sealed record IstioCaRequest(string Csr, long ValidityDurationSeconds, string? ImpersonatedIdentity);

/// <summary>
/// The messages of Istio's CA API (<c>istio.v1.auth.IstioCertificateService/CreateCertificate</c>) for a server: the
/// node agent answers waypoint pods with them (ztunnel's in-pod CA endpoint).
/// </summary>
public static class IstioCaMessages
{
    /// <summary>Parses an <c>IstioCertificateRequest</c>; throws <see cref="FormatException"/> when the bytes are not one.</summary>
    public static IstioCaRequest ParseRequest(ReadOnlySpan<byte> message)
    {
        IstioCertificateRequest r;
        try
        {
            r = IstioCertificateRequest.Parser.ParseFrom(message);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new FormatException($"the request is not an IstioCertificateRequest: {ex.Message}", ex);
        }
        string? impersonated = r.Metadata?.Fields.TryGetValue("ImpersonatedIdentity", out var v) == true ? v.StringValue : null;
        return new IstioCaRequest(r.Csr, r.ValidityDuration, impersonated);
    }

    /// <summary>An <c>IstioCertificateResponse</c> with the chain as PEM strings, leaf first and roots last (as istiod sends it).</summary>
    public static byte[] EncodeResponse(IEnumerable<string> chainPem)
    {
        var response = new IstioCertificateResponse();
        response.CertChain.AddRange(chainPem);
        return response.ToByteArray();
    }
}
