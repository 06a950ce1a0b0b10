using System.Text.RegularExpressions;

namespace Ambient.Mesh.Kubernetes.L7;

/// <summary>The string shapes Kubernetes and the Gateway API schemas constrain, as the API server checks them.</summary>
internal static partial class KubeNames
{
    public const string DnsSubdomainHint = "is not a valid name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)";
    public const string DnsLabelHint = "is not a valid DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63)";
    public const string KindHint = "is not a valid kind (letters, digits and '-', starting with a letter)";
    public const string HostnameHint = "is not a valid hostname (lower-case RFC 1123 labels, optionally starting with \"*.\"; no IP addresses or ports)";
    public const string PreciseHostnameHint = "is not a valid hostname (lower-case RFC 1123 labels, no wildcard)";
    public const string HeaderNameHint = "is not a valid HTTP header name (RFC 7230 token characters)";
    public const string HeaderValueHint = "is not a valid header value (printable characters, single spaces or tabs between words, no leading or trailing space)";

    /// <summary>An RFC 1123 subdomain (object names, API groups, section names).</summary>
    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", RegexOptions.CultureInvariant)]
    public static partial Regex DnsSubdomain();

    /// <summary>An RFC 1123 label (namespaces, Istio subset names).</summary>
    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", RegexOptions.CultureInvariant)]
    public static partial Regex DnsLabel();

    [GeneratedRegex(@"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", RegexOptions.CultureInvariant)]
    public static partial Regex Kind();

    /// <summary>A Gateway API Hostname: optionally a "*." wildcard first label.</summary>
    [GeneratedRegex(@"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", RegexOptions.CultureInvariant)]
    public static partial Regex Hostname();

    /// <summary>RFC 7230 token: what a header name may be.</summary>
    [GeneratedRegex(@"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$", RegexOptions.CultureInvariant)]
    public static partial Regex HeaderName();

    /// <summary>The Gateway API's header value shape (visible ASCII, single inner spaces/tabs).</summary>
    [GeneratedRegex(@"^[!-~]+([\t ]?[!-~]+)*$", RegexOptions.CultureInvariant)]
    public static partial Regex HeaderValue();

    /// <summary>RFC 3986 path characters (pchar and '/'), percent-encoded octets allowed.</summary>
    [GeneratedRegex(@"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$", RegexOptions.CultureInvariant)]
    public static partial Regex PathChars();

    /// <summary>A CORS origin: "*" or scheme://host[:port] with an optional "*." wildcard label.</summary>
    [GeneratedRegex(@"(^\*$)|(^(http(s)?):\/\/(((\*\.)?([a-zA-Z0-9\-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$)", RegexOptions.CultureInvariant)]
    public static partial Regex CorsOrigin();

    /// <summary>A fully qualified gRPC service name (case-insensitive, optional leading dot).</summary>
    [GeneratedRegex(@"^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    public static partial Regex GrpcService();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z_0-9]*$", RegexOptions.CultureInvariant)]
    public static partial Regex GrpcMethod();

    /// <summary>The name part of a label key, and a label value: alphanumerics, '-', '_' and '.', alphanumeric at both ends.</summary>
    [GeneratedRegex(@"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$", RegexOptions.CultureInvariant)]
    public static partial Regex LabelName();

    /// <summary>Why <paramref name="key"/> is not a Kubernetes label key ("prefix/name", prefix a DNS subdomain), or null.</summary>
    public static string? LabelKeyProblem(string key)
    {
        int slash = key.IndexOf('/');
        string name = slash < 0 ? key : key[(slash + 1)..];
        if (slash >= 0)
        {
            string prefix = key[..slash];
            if (prefix.Length == 0 || prefix.Length > 253 || !DnsSubdomain().IsMatch(prefix))
            {
                return $"label key '{key}' has an invalid prefix (a DNS subdomain such as example.com)";
            }
        }
        if (name.Length == 0 || name.Length > 63 || !LabelName().IsMatch(name))
        {
            return $"'{key}' is not a valid label key (at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends, optionally after a \"prefix/\")";
        }
        return null;
    }

    /// <summary>Why <paramref name="value"/> is not a label value, or null (empty is allowed).</summary>
    public static string? LabelValueProblem(string value) =>
        value.Length == 0 || (value.Length <= 63 && LabelName().IsMatch(value))
            ? null
            : $"'{value}' is not a valid label value (at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends)";
}
