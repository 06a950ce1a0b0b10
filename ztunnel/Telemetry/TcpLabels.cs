using System.Text;
using Ambient.Mesh.Model;

namespace Ambient.Ztunnel.Telemetry;

/// <summary>
/// The label set Istio puts on its L4 metrics. Built once per connection (not per byte): the rendered
/// Prometheus label text doubles as the key of the counter it selects.
/// </summary>
internal sealed record TcpLabels
{
    public required string Reporter { get; init; }
    public Workload? Source { get; init; }
    public string? SourcePrincipal { get; init; }
    public Workload? Destination { get; init; }
    public string? DestinationPrincipal { get; init; }
    public Service? DestinationService { get; init; }
    public string ResponseFlags { get; init; } = "-";
    public bool MutualTls { get; init; }

    public string Render()
    {
        var sb = new StringBuilder(512);
        Add(sb, "reporter", Reporter);
        Add(sb, "source_workload", WorkloadName(Source));
        Add(sb, "source_canonical_service", CanonicalName(Source));
        Add(sb, "source_canonical_revision", CanonicalRevision(Source));
        Add(sb, "source_workload_namespace", Source?.Namespace);
        Add(sb, "source_principal", SourcePrincipal);
        Add(sb, "source_cluster", Source?.ClusterId);
        Add(sb, "destination_service", DestinationService?.Hostname);
        Add(sb, "destination_service_namespace", DestinationService?.Namespace);
        Add(sb, "destination_service_name", DestinationService?.Name);
        Add(sb, "destination_workload", WorkloadName(Destination));
        Add(sb, "destination_canonical_service", CanonicalName(Destination));
        Add(sb, "destination_canonical_revision", CanonicalRevision(Destination));
        Add(sb, "destination_workload_namespace", Destination?.Namespace);
        Add(sb, "destination_principal", DestinationPrincipal);
        Add(sb, "destination_cluster", Destination?.ClusterId);
        Add(sb, "request_protocol", "tcp");
        Add(sb, "response_flags", ResponseFlags);
        Add(sb, "connection_security_policy", MutualTls ? "mutual_tls" : "unknown", last: true);
        return sb.ToString();
    }

    private static string? WorkloadName(Workload? w) => w is null ? null : w.WorkloadName.Length > 0 ? w.WorkloadName : w.Name;

    private static string? CanonicalName(Workload? w) => w is null ? null : w.CanonicalName.Length > 0 ? w.CanonicalName : WorkloadName(w);

    private static string? CanonicalRevision(Workload? w) => w is null ? null : w.CanonicalRevision.Length > 0 ? w.CanonicalRevision : "latest";

    internal static void Add(StringBuilder sb, string name, string? value, bool last = false)
    {
        sb.Append(name).Append("=\"");
        AppendEscaped(sb, string.IsNullOrEmpty(value) ? "unknown" : value);
        sb.Append('"');
        if (!last)
        {
            sb.Append(',');
        }
    }

    /// <summary>Prometheus text format escapes backslash, double quote and newline in label values.</summary>
    internal static void AppendEscaped(StringBuilder sb, string value)
    {
        foreach (char c in value)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '"': sb.Append("\\\""); break;
                case '\n': sb.Append("\\n"); break;
                default: sb.Append(c); break;
            }
        }
    }
}
