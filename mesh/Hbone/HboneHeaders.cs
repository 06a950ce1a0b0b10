using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Model;

namespace Ambient.Mesh.Hbone;

/// <summary>The request headers of an HBONE CONNECT, as Istio's ztunnel sends them.</summary>
public static class HboneHeaders
{
    public const string Forwarded = "forwarded";
    public const string Baggage = "baggage";
    public const string TraceParent = "traceparent";
    public const int HbonePort = 15008;

    /// <summary>Builds the CONNECT header list: pseudo-headers first, then forwarded/baggage/traceparent.</summary>
    public static HeaderField[] ForConnect(string authority, IPEndPoint source, Workload? sourceWorkload, string? traceParent = null)
    {
        var headers = new HeaderField[sourceWorkload is null ? 4 : 5];
        headers[0] = new HeaderField(":method", "CONNECT");
        headers[1] = new HeaderField(":authority", authority);
        headers[2] = new HeaderField(Forwarded, $"for=\"{FormatEndpoint(source)}\"");
        headers[3] = new HeaderField(TraceParent, traceParent ?? NewTraceParent());
        if (sourceWorkload is not null)
        {
            headers[4] = new HeaderField(Baggage, BaggageFor(sourceWorkload));
        }
        return headers;
    }

    // One baggage string per workload object (a config change makes new workload objects, and the old entries go
    // with them): every tunnel keeps its CONNECT headers, and they would otherwise each hold a copy.
    private static readonly ConditionalWeakTable<Workload, string> s_baggage = new();

    /// <summary>Istio's baggage: cluster, namespace, workload kind/name, canonical service and revision.</summary>
    public static string BaggageFor(Workload w) => s_baggage.GetValue(w, MakeBaggage);

    private static string MakeBaggage(Workload w)
    {
        var sb = new StringBuilder(160);
        if (w.ClusterId.Length > 0)
        {
            sb.Append("k8s.cluster.name=").Append(w.ClusterId).Append(',');
        }
        sb.Append("k8s.namespace.name=").Append(w.Namespace);
        string kind = w.WorkloadType.Length > 0 ? w.WorkloadType : "pod";
        sb.Append(",k8s.").Append(kind).Append(".name=").Append(w.WorkloadName.Length > 0 ? w.WorkloadName : w.Name);
        sb.Append(",service.name=").Append(w.CanonicalName.Length > 0 ? w.CanonicalName : w.Name);
        sb.Append(",service.version=").Append(w.CanonicalRevision.Length > 0 ? w.CanonicalRevision : "latest");
        return sb.ToString();
    }

    /// <summary>A fresh W3C traceparent (version 00, sampled flag off).</summary>
    public static string NewTraceParent()
    {
        Span<byte> ids = stackalloc byte[24];
        RandomNumberGenerator.Fill(ids);
        return string.Create(55, ids.ToArray(), static (span, b) =>
        {
            "00-".AsSpan().CopyTo(span);
            Convert.TryToHexStringLower(b.AsSpan(0, 16), span[3..], out _);
            span[35] = '-';
            Convert.TryToHexStringLower(b.AsSpan(16, 8), span[36..], out _);
            "-00".AsSpan().CopyTo(span[52..]);
        });
    }

    public static string FormatEndpoint(IPEndPoint ep) =>
        ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ep.Address}]:{ep.Port}" : $"{ep.Address}:{ep.Port}";

    /// <summary>Parses <c>ip:port</c> or <c>[v6]:port</c> (an HBONE :authority is always an address, never a name).</summary>
    public static bool TryParseAuthority(string? authority, out IPEndPoint endpoint)
    {
        endpoint = null!;
        if (string.IsNullOrEmpty(authority) || !IPEndPoint.TryParse(authority, out var ep) || ep.Port == 0)
        {
            return false;
        }
        // IPEndPoint.TryParse accepts a bare v6 address without brackets; an authority must carry a port.
        if (ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !authority.StartsWith('['))
        {
            return false;
        }
        endpoint = ep;
        return true;
    }

    /// <summary>Reads the client address out of <c>forwarded: for="ip:port"</c>, if present and well formed.</summary>
    public static IPEndPoint? ParseForwardedFor(string? forwarded)
    {
        if (forwarded is null)
        {
            return null;
        }
        int i = forwarded.IndexOf("for=", StringComparison.OrdinalIgnoreCase);
        if (i < 0)
        {
            return null;
        }
        var rest = forwarded.AsSpan(i + 4);
        int end = rest.IndexOfAny(';', ',');
        if (end >= 0)
        {
            rest = rest[..end];
        }
        rest = rest.Trim().Trim('"');
        return IPEndPoint.TryParse(rest, out var ep) ? ep : null;
    }

    public static string? Get(IReadOnlyList<HeaderField> headers, string name)
    {
        for (int i = 0; i < headers.Count; i++)
        {
            if (string.Equals(headers[i].Name, name, StringComparison.Ordinal))
            {
                return headers[i].Value;
            }
        }
        return null;
    }
}
