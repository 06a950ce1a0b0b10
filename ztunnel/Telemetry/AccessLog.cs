using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Ambient.Mesh.Config;

namespace Ambient.Ztunnel.Telemetry;

/// <summary>
/// One line per connection, when it ends, in the shape Istio's ztunnel prints (<c>src.addr=... dst.workload=...</c>),
/// or one JSON object per line. Lines are written whole under a lock so concurrent connections never interleave.
/// </summary>
internal sealed class AccessLog(TextWriter output, AccessLogFormat format)
{
    private readonly Lock _lock = new();

    public AccessLogFormat Format { get; set; } = format;

    public void Write(ConnectionRecord r)
    {
        if (Format == AccessLogFormat.Off)
        {
            return;
        }
        string line = Format == AccessLogFormat.Json ? Json(r) : Text(r);
        lock (_lock)
        {
            output.Write(line);
            output.Write('\n');
            output.Flush();
        }
    }

    private static string Text(ConnectionRecord r)
    {
        var sb = new StringBuilder(400);
        sb.Append(DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture))
          .Append(r.Error is null ? "\tinfo\taccess\tconnection complete" : "\terror\taccess\tconnection complete");
        Pair(sb, "src.addr", Addr(r.Source), quote: false);
        Pair(sb, "src.workload", r.SourceWorkload?.Name);
        Pair(sb, "src.namespace", r.SourceWorkload?.Namespace);
        Pair(sb, "src.identity", r.SourceIdentity);
        Pair(sb, "dst.addr", r.Destination is null ? null : Addr(r.Destination), quote: false);
        Pair(sb, "dst.hbone_addr", r.HboneAddress is null ? null : Addr(r.HboneAddress), quote: false);
        Pair(sb, "dst.service", r.DestinationService?.Hostname);
        Pair(sb, "dst.workload", r.DestinationWorkload?.Name);
        Pair(sb, "dst.namespace", r.DestinationWorkload?.Namespace);
        Pair(sb, "dst.identity", r.DestinationIdentity);
        Pair(sb, "direction", r.Direction);
        Pair(sb, "bytes_sent", r.BytesSent.ToString(CultureInfo.InvariantCulture), quote: false);
        Pair(sb, "bytes_recv", r.BytesReceived.ToString(CultureInfo.InvariantCulture), quote: false);
        Pair(sb, "duration", $"{(long)r.Duration.TotalMilliseconds}ms");
        if (r.ResponseFlags != "-")
        {
            Pair(sb, "response_flags", r.ResponseFlags);
        }
        Pair(sb, "error", r.Error);
        return sb.ToString();
    }

    private static void Pair(StringBuilder sb, string key, string? value, bool quote = true)
    {
        if (string.IsNullOrEmpty(value))
        {
            return;
        }
        sb.Append(' ').Append(key).Append('=');
        if (quote)
        {
            // Escaped as Prometheus escapes label values, so one connection stays one line whatever a value holds
            // (an error message with a newline, a quote in a name).
            sb.Append('"');
            TcpLabels.AppendEscaped(sb, value);
            sb.Append('"');
        }
        else
        {
            sb.Append(value);
        }
    }

    private static string Json(ConnectionRecord r)
    {
        using var ms = new MemoryStream(512);
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("time", DateTime.UtcNow);
            w.WriteString("level", r.Error is null ? "info" : "error");
            w.WriteString("scope", "access");
            w.WriteString("message", "connection complete");
            Str(w, "src.addr", Addr(r.Source));
            Str(w, "src.workload", r.SourceWorkload?.Name);
            Str(w, "src.namespace", r.SourceWorkload?.Namespace);
            Str(w, "src.identity", r.SourceIdentity);
            Str(w, "dst.addr", r.Destination is null ? null : Addr(r.Destination));
            Str(w, "dst.hbone_addr", r.HboneAddress is null ? null : Addr(r.HboneAddress));
            Str(w, "dst.service", r.DestinationService?.Hostname);
            Str(w, "dst.workload", r.DestinationWorkload?.Name);
            Str(w, "dst.namespace", r.DestinationWorkload?.Namespace);
            Str(w, "dst.identity", r.DestinationIdentity);
            Str(w, "direction", r.Direction);
            w.WriteNumber("bytes_sent", r.BytesSent);
            w.WriteNumber("bytes_recv", r.BytesReceived);
            w.WriteNumber("duration_ms", (long)r.Duration.TotalMilliseconds);
            Str(w, "response_flags", r.ResponseFlags);
            Str(w, "error", r.Error);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length);
    }

    private static void Str(Utf8JsonWriter w, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            w.WriteString(name, value);
        }
    }

    private static string Addr(IPEndPoint ep) => ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
        ? $"[{ep.Address}]:{ep.Port}"
        : $"{ep.Address}:{ep.Port}";
}
