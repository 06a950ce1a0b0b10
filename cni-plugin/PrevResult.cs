using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ambient.Cni;

/// <summary>
/// Reading and re-emitting the previous plugin's result. A chained plugin must hand that result on
/// (SPEC.md, "Chained plugins"); we never amend it, only stamp the config's cniVersion on it.
/// </summary>
internal static class PrevResult
{
    // Keeps non-ASCII text as it came instead of \u-escaping it; the output is not embedded in HTML.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// The container's addresses: every <c>ips[].address</c> (CIDR) whose <c>interface</c> index, when
    /// present, points at a sandbox interface. Host-side addresses (a bridge gateway, say) are not the pod's.
    /// </summary>
    public static IReadOnlyList<string> PodIps(JsonObject? result)
    {
        if (result?["ips"] is not JsonArray ips)
        {
            return [];
        }

        var interfaces = result["interfaces"] as JsonArray;
        var list = new List<string>(ips.Count);
        for (int i = 0; i < ips.Count; i++)
        {
            if (ips[i] is not JsonObject ip || !TryGetString(ip, "address", out string? address))
            {
                throw new CniException(CniErrorCode.InvalidConfig, $"invalid prevResult: ips[{i}] has no address");
            }

            int slash = address.IndexOf('/', StringComparison.Ordinal);
            string bare = slash >= 0 ? address[..slash] : address;
            if (!IPAddress.TryParse(bare, out var parsed))
            {
                throw new CniException(CniErrorCode.InvalidConfig, $"invalid prevResult: ips[{i}].address \"{address}\" is not an IP address in CIDR form");
            }

            if (IsHostSide(ip, interfaces))
            {
                continue;
            }

            list.Add(parsed.ToString());
        }

        return list;
    }

    private static bool IsHostSide(JsonObject ip, JsonArray? interfaces)
    {
        if (interfaces is null || ip["interface"] is not JsonValue indexValue || !indexValue.TryGetValue(out int index))
        {
            return false;
        }

        return index >= 0 && index < interfaces.Count
            && interfaces[index] is JsonObject iface
            && !(TryGetString(iface, "sandbox", out string? sandbox) && sandbox.Length > 0);
    }

    /// <summary>The ADD output: prevResult as received, its cniVersion set to the config's.</summary>
    public static byte[] Render(JsonObject prevResult, string cniVersion)
    {
        // Setting an existing key keeps its position, so the output reads like the input.
        prevResult["cniVersion"] = cniVersion;
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            prevResult.WriteTo(writer);
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    private static bool TryGetString(JsonObject obj, string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        value = null;
        return obj[key] is JsonValue v && v.TryGetValue(out value);
    }
}
