using System.Globalization;
using System.Text;
using Ambient.OtlpReceiver.Proto.Trace.V1;

namespace Ambient.OtlpReceiver;

/// <summary>Renders received spans as one tree per trace: each span under its parent, with Istio's main tags.</summary>
internal static class SpanTree
{
    private static readonly string[] Shown = ["http.method", "http.url", "http.status_code", "response_flags", "upstream_cluster", "peer.address", "guid:x-request-id"];

    public static string Render(IReadOnlyList<ReceivedSpan> spans)
    {
        var sb = new StringBuilder();
        foreach (var trace in spans.GroupBy(s => s.TraceId))
        {
            var list = trace.OrderBy(s => s.Span.StartTimeUnixNano).ToList();
            var ids = list.Select(s => s.SpanId).ToHashSet(StringComparer.Ordinal);
            sb.Append("trace ").Append(trace.Key).Append('\n');
            foreach (var root in list.Where(s => !ids.Contains(s.ParentSpanId)))
            {
                Write(sb, root, list, 1);
            }
        }
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, ReceivedSpan span, List<ReceivedSpan> all, int depth)
    {
        double ms = (span.Span.EndTimeUnixNano - span.Span.StartTimeUnixNano) / 1e6;
        sb.Append(' ', depth * 2).Append(span.Name)
          .Append(" [").Append(Kind(span.Span.Kind)).Append("] ")
          .Append(span.ResourceAttribute("service.name") ?? "?")
          .Append(CultureInfo.InvariantCulture, $" {ms:0.###} ms span={span.SpanId}");
        if (span.ParentSpanId.Length > 0 && depth == 1)
        {
            sb.Append(" parent=").Append(span.ParentSpanId).Append(" (not received)");
        }
        foreach (var key in Shown)
        {
            if (span.Attribute(key) is { } v)
            {
                sb.Append(' ').Append(key).Append('=').Append(v);
            }
        }
        sb.Append('\n');
        foreach (var child in all.Where(s => s.ParentSpanId == span.SpanId))
        {
            Write(sb, child, all, depth + 1);
        }
    }

    private static string Kind(Span.Types.SpanKind kind) => kind switch
    {
        Span.Types.SpanKind.Server => "server",
        Span.Types.SpanKind.Client => "client",
        Span.Types.SpanKind.Producer => "producer",
        Span.Types.SpanKind.Consumer => "consumer",
        _ => "internal",
    };
}
