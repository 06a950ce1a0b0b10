using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace Ambient.Mesh.Identity;

/// <summary>
/// Reads the SPIFFE id out of a certificate's subjectAltName. .NET's X509SubjectAlternativeNameExtension only
/// enumerates DNS names and IP addresses, so the URI entries (GeneralName [6] IA5String, RFC 5280 4.2.1.6) are
/// decoded here. Public for the agent's CA, which reads the names a certificate request asks for.
/// </summary>
public static class SpiffeSan
{
    private const string SubjectAltNameOid = "2.5.29.17";
    private static readonly Asn1Tag UriTag = new(TagClass.ContextSpecific, 6);

    /// <summary>
    /// X.509-SVID spec section 2: an SVID carries exactly one URI SAN, and it is the SPIFFE id. More than one is
    /// refused rather than picking one, so a certificate can never stand for two identities.
    /// </summary>
    public static bool TryRead(X509Certificate2 certificate, out SpiffeId id, out string? error)
    {
        id = default;
        if (!TryReadNames(certificate.Extensions, out var uris, out _, out string? problem))
        {
            error = $"certificate {problem}";
            return false;
        }
        switch (uris.Count)
        {
            case 0:
                error = "certificate has no URI SAN";
                return false;
            case > 1:
                error = "certificate has more than one URI SAN";
                return false;
        }

        string uri = uris[0];
        if (!SpiffeId.TryParse(uri, out SpiffeId? parsed))
        {
            error = $"URI SAN '{uri}' is not a SPIFFE id of the form spiffe://<trust-domain>/ns/<ns>/sa/<sa>";
            return false;
        }

        id = parsed.Value;
        error = null;
        return true;
    }

    /// <summary>
    /// The subjectAltName among <paramref name="extensions"/> (a certificate's or a certificate request's): its URI
    /// entries in order, and how many entries of other kinds (DNS names, IP addresses...) it holds. False, with why
    /// ("has no subjectAltName", "has a malformed subjectAltName"), when there is none or it cannot be decoded.
    /// </summary>
    public static bool TryReadNames(IEnumerable<X509Extension> extensions, out List<string> uris, out int others, out string? problem)
    {
        uris = [];
        others = 0;
        X509Extension? san = extensions.FirstOrDefault(e => e.Oid?.Value == SubjectAltNameOid);
        if (san is null)
        {
            problem = "has no subjectAltName";
            return false;
        }
        try
        {
            var reader = new AsnReader(san.RawData, AsnEncodingRules.DER);
            AsnReader names = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            while (names.HasData)
            {
                if (names.PeekTag().HasSameClassAndValue(UriTag))
                {
                    uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, UriTag));
                }
                else
                {
                    names.ReadEncodedValue();
                    others++;
                }
            }
        }
        catch (AsnContentException)
        {
            problem = "has a malformed subjectAltName";
            return false;
        }
        problem = null;
        return true;
    }
}
