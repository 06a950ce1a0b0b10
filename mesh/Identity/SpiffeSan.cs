using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace Ambient.Mesh.Identity;

/// <summary>
/// Reads the SPIFFE id out of a certificate's subjectAltName. .NET's X509SubjectAlternativeNameExtension only
/// enumerates DNS names and IP addresses, so the URI entries (GeneralName [6] IA5String, RFC 5280 4.2.1.6) are
/// decoded here.
/// </summary>
internal static class SpiffeSan
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
        X509Extension? san = null;
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension.Oid?.Value == SubjectAltNameOid)
            {
                san = extension;
                break;
            }
        }

        if (san is null)
        {
            error = "certificate has no subjectAltName";
            return false;
        }

        string? uri = null;
        try
        {
            var reader = new AsnReader(san.RawData, AsnEncodingRules.DER);
            AsnReader names = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            while (names.HasData)
            {
                Asn1Tag tag = names.PeekTag();
                if (!tag.HasSameClassAndValue(UriTag))
                {
                    names.ReadEncodedValue();
                    continue;
                }

                if (uri is not null)
                {
                    error = "certificate has more than one URI SAN";
                    return false;
                }

                uri = names.ReadCharacterString(UniversalTagNumber.IA5String, UriTag);
            }
        }
        catch (AsnContentException)
        {
            error = "certificate has a malformed subjectAltName";
            return false;
        }

        if (uri is null)
        {
            error = "certificate has no URI SAN";
            return false;
        }

        if (!SpiffeId.TryParse(uri, out SpiffeId? parsed))
        {
            error = $"URI SAN '{uri}' is not a SPIFFE id of the form spiffe://<trust-domain>/ns/<ns>/sa/<sa>";
            return false;
        }

        id = parsed.Value;
        error = null;
        return true;
    }
}
