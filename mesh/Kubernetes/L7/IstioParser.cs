using System.Collections.Immutable;
using System.Net;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes.L7;

/// <summary>
/// Istio's networking and telemetry kinds (VirtualService, DestinationRule, Telemetry), validated as the CRD schema
/// and istiod's validating webhook would. This file has what they share (hosts, labels, exportTo, ports,
/// percentages); each kind is in its own partial file.
/// </summary>
internal sealed partial class IstioParser(SpecReader s)
{
    /// <summary>
    /// Why <paramref name="host"/> is not an Istio host name (an FQDN or short name whose first label may be a
    /// wildcard: "*", "*.example.com", "*-foo.example.com"), or null. Istio's DNS labels allow upper case.
    /// </summary>
    public static string? WildcardDomainProblem(string host)
    {
        if (host.Length == 0)
        {
            return "must not be empty";
        }
        if (host.Length > 255)
        {
            return $"'{host}' is too long (at most 255 characters)";
        }
        int dot = host.IndexOf('.');
        string first = dot < 0 ? host : host[..dot];
        if (first.Length > 63 || !WildcardLabel().IsMatch(first))
        {
            return $"'{host}' is not a valid host (label '{first}' is invalid)";
        }
        return dot < 0 ? null : LabelsProblem(host, host[(dot + 1)..]);
    }

    /// <summary>Why <paramref name="host"/> is not a fully qualified name (no wildcard), or null.</summary>
    public static string? FqdnProblem(string host) =>
        host.Length == 0 ? "must not be empty"
        : host.Length > 255 ? $"'{host}' is too long (at most 255 characters)"
        : LabelsProblem(host, host);

    private static string? LabelsProblem(string host, string labels)
    {
        string[] parts = labels.Split('.');
        string tld = parts[^1];
        if (tld.Length > 0 && int.TryParse(tld, out _))
        {
            return $"'{host}' is not a valid host (top-level domain '{tld}' cannot be all-numeric)";
        }
        for (int i = 0; i < parts.Length; i++)
        {
            // A trailing dot ("istio.io.") is an unambiguous absolute name.
            if (i == parts.Length - 1 && parts[i].Length == 0 && i > 0)
            {
                break;
            }
            if (!IsDnsLabel(parts[i]))
            {
                return $"'{host}' is not a valid host (label '{parts[i]}' is invalid)";
            }
        }
        return null;
    }

    public static bool IsDnsLabel(string label) => label.Length is > 0 and <= 63 && DnsLabel().IsMatch(label);

    public static bool IsIp(string text) => IPAddress.TryParse(text, out _) && (text.Contains(':') || text.Split('.').Length == 4);

    /// <summary>A host field (DestinationRule.host, destination.host): an Istio host name.</summary>
    public string? Host(YamlNode node, string path)
    {
        string? h = s.String(node, path);
        if (h is null)
        {
            return null;
        }
        if (WildcardDomainProblem(h) is { } problem)
        {
            s.Error(node, path, problem);
            return null;
        }
        return h;
    }

    /// <summary>Labels a subset or source match selects by: Kubernetes label keys and values.</summary>
    public ImmutableDictionary<string, string> Labels(YamlNode node, string path) =>
        s.StringMap(node, path, (key, name, value, valueNode, p) =>
        {
            if (KubeNames.LabelKeyProblem(name) is { } kp)
            {
                s.Error(key, p, kp);
            }
            if (KubeNames.LabelValueProblem(value) is { } vp)
            {
                s.Error(valueNode, p, vp);
            }
        });

    /// <summary><c>workloadSelector</c> / <c>selector</c>: <c>{matchLabels: {...}}</c>, no wildcards.</summary>
    public ImmutableDictionary<string, string>? WorkloadSelector(YamlNode node, string path)
    {
        ImmutableDictionary<string, string> labels = ImmutableDictionary<string, string>.Empty;
        s.OnlyField(node, path, "matchLabels", (v, p) =>
        {
            labels = s.StringMap(v, p, (lk, name, value, valueNode, lp) =>
            {
                if (name.Length == 0 || name.Contains('*'))
                {
                    s.Error(lk, lp, "a label key must be non-empty and must not contain a wildcard");
                }
                if (value.Contains('*') || value.Length > 63)
                {
                    s.Error(valueNode, lp, "a label value must be at most 63 characters and must not contain a wildcard");
                }
            });
            if (labels.IsEmpty)
            {
                s.Warning(v, p, "workload selector specified without labels: it selects every workload");
            }
        });
        return labels;
    }

    /// <summary>
    /// <c>exportTo</c>: "." (this namespace), "*" (all) or namespace names; no repeats, "*" alone. With a workload
    /// selector (DestinationRule) only this namespace is allowed.
    /// </summary>
    public ImmutableArray<string> ExportTo(YamlNode node, string path, string ns, bool allowNone)
    {
        ImmutableArray<string> values = s.Strings(node, path, check: (v, p) =>
        {
            string? e = s.String(v, p);
            if (e is null or "." or "*" || (allowNone && e == "~"))
            {
                return e;
            }
            if (!KubeNames.DnsLabel().IsMatch(e))
            {
                s.Error(v, p, $"'{e}' is not \".\", \"*\" or a namespace name");
                return null;
            }
            return e;
        });
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string e in values)
        {
            if (!seen.Add(e == "." ? ns : e))
            {
                s.Error(node, path, e == "." || e == ns ? $"duplicate entries in exportTo: \".\" and the current namespace {ns}" : $"duplicate entry '{e}' in exportTo");
            }
        }
        if (values.Length > 1 && (values.Contains("*") || values.Contains("~")))
        {
            s.Error(node, path, "\"*\" (or \"~\") cannot be combined with other exportTo values");
        }
        return values;
    }

    /// <summary>A port selector <c>{number: N}</c>.</summary>
    public int? PortSelector(YamlNode node, string path)
    {
        int? port = null;
        s.OnlyField(node, path, "number", (v, p) => port = s.Int(v, p, 1, 65535));
        s.Require(node, path, "number", "the port number");
        return port;
    }

    /// <summary>
    /// An Istio Percent <c>{value: 12.5}</c>: 0, or between 0.0001 and 100 (Envoy's fractional-percent resolution).
    /// </summary>
    public double? Percent(YamlNode node, string path)
    {
        double? value = null;
        s.OnlyField(node, path, "value", (v, p) =>
        {
            value = s.Double(v, p, 0, 100);
            if (value is > 0 and < 0.0001)
            {
                s.Error(v, p, $"{value} is neither 0 nor in the range 0.0001-100");
                value = null;
            }
        });
        return value ?? 0;
    }

    /// <summary>A port number field (uint32 in Istio's protos, 1-65535 when set; 0 means unset).</summary>
    public int? Port(YamlNode node, string path, bool zeroIsUnset = true)
    {
        uint? v = s.UInt(node, path);
        if (v is null || (v == 0 && zeroIsUnset))
        {
            return null;
        }
        if (v > 65535 || v == 0)
        {
            s.Error(node, path, $"port number {v} must be in the range 1..65535");
            return null;
        }
        return (int)v;
    }

    /// <summary>Why a gateway reference ("namespace/name", "mesh" or a legacy FQDN) is wrong, or null.</summary>
    public static string? GatewayNameProblem(string gateway)
    {
        int slash = gateway.IndexOf('/');
        if (slash < 0)
        {
            return gateway == "mesh" ? null : FqdnProblem(gateway);
        }
        string ns = gateway[..slash], name = gateway[(slash + 1)..];
        if (ns.Length == 0 || name.Length == 0)
        {
            return $"'{gateway}': the namespace and gateway name cannot be empty";
        }
        if (!IsDnsLabel(ns))
        {
            return $"'{gateway}': invalid namespace '{ns}'";
        }
        return IsDnsLabel(name) ? null : $"'{gateway}': invalid gateway name '{name}'";
    }

    public ImmutableArray<string> Gateways(YamlNode node, string path) => s.Strings(node, path, check: (v, p) =>
    {
        string? g = s.String(v, p);
        if (g is not null && GatewayNameProblem(g) is { } problem)
        {
            s.Error(v, p, problem);
            return null;
        }
        return g;
    });

    /// <summary>A namespace name (sourceNamespace).</summary>
    public string? NamespaceName(YamlNode node, string path)
    {
        string? ns = s.String(node, path);
        if (ns is not null && ns.Length > 0 && !IsDnsLabel(ns))
        {
            s.Error(node, path, $"'{ns}' is not a valid namespace name");
            return null;
        }
        return string.IsNullOrEmpty(ns) ? null : ns;
    }

    /// <summary>A subset name: a DNS label.</summary>
    public string? SubsetName(YamlNode node, string path)
    {
        string? n = s.String(node, path);
        if (n is not null && !IsDnsLabel(n))
        {
            s.Error(node, path, n.Length == 0 ? "subset name cannot be empty" : $"'{n}' is not a valid subset name (a DNS label)");
            return null;
        }
        return n;
    }

    [GeneratedRegex(@"^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$", RegexOptions.CultureInvariant)]
    private static partial Regex DnsLabel();

    [GeneratedRegex(@"^(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$", RegexOptions.CultureInvariant)]
    private static partial Regex WildcardLabel();
}
