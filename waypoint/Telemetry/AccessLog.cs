using System.Globalization;
using System.Text;
using System.Text.Json;
using Ambient.Mesh.Config;

namespace Ambient.Waypoint.Telemetry;

/// <summary>
/// One line per request, Envoy-like in text (<c>[time] "GET /p HTTP/1.1" 200 flags ...</c>) or one JSON object per
/// line. Written under a lock so lines never interleave.
/// </summary>
internal sealed class AccessLog(TextWriter writer, AccessLogFormat format)
{
    private readonly Lock _lock = new();

    public bool Enabled => format != AccessLogFormat.Off;

    public void Write(RequestRecord r, double durationMs)
    {
        if (format == AccessLogFormat.Off)
        {
            return;
        }
        string line = format == AccessLogFormat.Json ? Json(r, durationMs) : Text(r, durationMs);
        lock (_lock)
        {
            writer.WriteLine(line);
            writer.Flush();
        }
    }

    /// <summary>One line per TCP connection relayed or refused (<c>"TCP"</c> where a request line would be).</summary>
    public void WriteTcp(Hbone.TunnelInfo tunnel, string flags, long received, long sent, double durationMs, string? upstream, string? detail)
    {
        if (format == AccessLogFormat.Off)
        {
            return;
        }
        string line;
        if (format == AccessLogFormat.Json)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteString("start_time", DateTimeOffset.UtcNow);
                w.WriteString("protocol", "TCP");
                w.WriteString("response_flags", flags);
                w.WriteNumber("bytes_received", received);
                w.WriteNumber("bytes_sent", sent);
                w.WriteNumber("duration_ms", Math.Round(durationMs, 3));
                w.WriteString("authority", tunnel.Authority.ToString());
                w.WriteString("downstream_remote_address", tunnel.Client.ToString());
                w.WriteString("source_principal", tunnel.Peer.ToString());
                w.WriteString("destination_service", tunnel.Service?.Hostname);
                w.WriteString("upstream_host", upstream);
                if (detail is not null)
                {
                    w.WriteString("detail", detail);
                }
                w.WriteEndObject();
            }
            line = Encoding.UTF8.GetString(ms.ToArray());
        }
        else
        {
            var sb = new StringBuilder(256);
            sb.Append('[').Append(DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)).Append("] \"TCP\" ");
            sb.Append(flags).Append(' ').Append(received.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(sent.ToString(CultureInfo.InvariantCulture)).Append(' ');
            sb.Append(durationMs.ToString("0.###", CultureInfo.InvariantCulture)).Append("ms ");
            sb.Append('"').Append(tunnel.Authority).Append("\" src=").Append(tunnel.Client).Append(" src_principal=").Append(tunnel.Peer);
            sb.Append(" dst_service=").Append(tunnel.Service?.Hostname ?? "-").Append(" upstream=").Append(upstream ?? "-");
            if (detail is not null)
            {
                sb.Append(" detail=\"").Append(detail.Replace('"', '\'')).Append('"');
            }
            line = sb.ToString();
        }
        lock (_lock)
        {
            writer.WriteLine(line);
            writer.Flush();
        }
    }

    private static string Text(RequestRecord r, double durationMs)
    {
        var sb = new StringBuilder(256);
        sb.Append('[').Append(DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)).Append("] ");
        sb.Append('"').Append(r.Method).Append(' ').Append(r.Path).Append(' ').Append(r.Protocol).Append("\" ");
        sb.Append(r.Status.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(r.ResponseFlags).Append(' ');
        sb.Append(r.RequestBytes.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(r.ResponseBytes.ToString(CultureInfo.InvariantCulture)).Append(' ');
        sb.Append(durationMs.ToString("0.###", CultureInfo.InvariantCulture)).Append("ms ");
        sb.Append('"').Append(r.Authority).Append("\" ");
        sb.Append("src=").Append(r.Tunnel.Client).Append(' ').Append("src_principal=").Append(r.Tunnel.Peer).Append(' ');
        sb.Append("dst_service=").Append(r.DestinationService?.Hostname ?? "-").Append(' ');
        sb.Append("upstream=").Append(r.Upstream ?? "-").Append(' ');
        sb.Append("route=").Append(r.Route ?? "-");
        if (r.Detail is not null)
        {
            sb.Append(" detail=\"").Append(r.Detail.Replace('"', '\'')).Append('"');
        }
        return sb.ToString();
    }

    private static string Json(RequestRecord r, double durationMs)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("start_time", DateTimeOffset.UtcNow);
            w.WriteString("method", r.Method);
            w.WriteString("path", r.Path);
            w.WriteString("protocol", r.Protocol);
            w.WriteNumber("response_code", r.Status);
            w.WriteString("response_flags", r.ResponseFlags);
            w.WriteNumber("bytes_received", r.RequestBytes);
            w.WriteNumber("bytes_sent", r.ResponseBytes);
            w.WriteNumber("duration_ms", Math.Round(durationMs, 3));
            w.WriteString("authority", r.Authority);
            w.WriteString("downstream_remote_address", r.Tunnel.Client.ToString());
            w.WriteString("source_principal", r.Tunnel.Peer.ToString());
            w.WriteString("destination_service", r.DestinationService?.Hostname);
            w.WriteString("upstream_host", r.Upstream);
            w.WriteString("route_name", r.Route);
            if (r.Detail is not null)
            {
                w.WriteString("detail", r.Detail);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
