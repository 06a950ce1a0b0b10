using System.Text;
using Ambient.Mesh.Model;

namespace Ambient.Ztunnel.Telemetry;

/// <summary>
/// The label set Istio puts on its L4 metrics. Built once per connection (not per byte): the rendered
/// Prometheus label text doubles as the key of the counter it selects.
/// </summary>
internal sealed record TcpLabels
{
    /// <summary>The same label set as a key compared by reference (workloads and services are immutable snapshot
    /// objects), so finding a connection's counters costs a hash of eight references, not rendering 19 labels.</summary>
    public Key ToKey() => new(Reporter, Source, SourcePrincipal, Destination, DestinationPrincipal, DestinationService, ResponseFlags, MutualTls);

    internal readonly record struct Key(
        string Reporter,
        Workload? Source,
        string? SourcePrincipal,
        Workload? Destination,
        string? DestinationPrincipal,
        Service? DestinationService,
        string ResponseFlags,
        bool MutualTls);

    internal sealed class KeyComparer : IEqualityComparer<Key>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals(Key a, Key b) =>
            ReferenceEquals(a.Source, b.Source) && ReferenceEquals(a.Destination, b.Destination) &&
            ReferenceEquals(a.DestinationService, b.DestinationService) && a.MutualTls == b.MutualTls &&
            string.Equals(a.Reporter, b.Reporter, StringComparison.Ordinal) &&
            string.Equals(a.ResponseFlags, b.ResponseFlags, StringComparison.Ordinal) &&
            string.Equals(a.SourcePrincipal, b.SourcePrincipal, StringComparison.Ordinal) &&
            string.Equals(a.DestinationPrincipal, b.DestinationPrincipal, StringComparison.Ordinal);

        public int GetHashCode(Key k) => HashCode.Combine(
            System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(k.Source),
            System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(k.Destination),
            System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(k.DestinationService),
            k.Reporter.GetHashCode(StringComparison.Ordinal),
            k.ResponseFlags.GetHashCode(StringComparison.Ordinal),
            k.SourcePrincipal?.GetHashCode(StringComparison.Ordinal) ?? 0,
            k.DestinationPrincipal?.GetHashCode(StringComparison.Ordinal) ?? 0,
            k.MutualTls);
    }

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
