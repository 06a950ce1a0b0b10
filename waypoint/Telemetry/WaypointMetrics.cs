using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Model;
using Ambient.Waypoint.Hbone;

namespace Ambient.Waypoint.Telemetry;

/// <summary>
/// The waypoint's one metrics registry, rendered in the Prometheus text format on the metrics port: Istio's L7
/// metrics with <c>reporter="waypoint"</c> (<c>istio_requests_total</c>, <c>istio_request_duration_milliseconds</c>,
/// <c>istio_request_bytes</c>, <c>istio_response_bytes</c>), <c>istio_build</c>, and the waypoint's own
/// <c>ambient_waypoint_*</c>. A series is found by its rendered label string, so two requests with equal labels share
/// counters; the histograms use Envoy's default buckets, as Istio's do.
/// </summary>
internal sealed class WaypointMetrics
{
    /// <summary>Envoy's default histogram buckets (milliseconds for durations, bytes for sizes).</summary>
    public static readonly double[] Buckets = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

    private readonly ConcurrentDictionary<string, Series> _series = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TcpSeries> _tcp = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _refused = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _reloads = new(StringComparer.Ordinal);

    private readonly List<Action<StringBuilder>> _collectors = [];

    /// <summary>Adds a part's own series (governance gauges and counters) to this one exposition.</summary>
    public void AddCollector(Action<StringBuilder> render)
    {
        lock (_collectors)
        {
            _collectors.Add(render);
        }
    }

    public string Version { get; init; } = typeof(WaypointMetrics).Assembly.GetName().Version?.ToString(3) ?? "dev";

    // Requests with the same peers and outcome share a series; finding it by its rendered label string would build
    // ~1.3 KB of text per request. The key holds the snapshot objects themselves (compared by reference: a config
    // change makes new ones, which render anew), and the cache is dropped whole when it grows past its bound, so
    // objects of old snapshots are not kept alive for long.
    private const int MaxCachedKeys = 4096;
    private readonly ConcurrentDictionary<SeriesKey, Series> _byKey = new();

    /// <summary>Counts one finished request.</summary>
    public void Record(RequestRecord r, double durationMs)
    {
        var key = new SeriesKey(r.Tunnel.Peer, r.Tunnel.SourceWorkload, r.DestinationWorkload, r.DestinationService, r.Grpc, r.Status, r.GrpcStatus, r.ResponseFlags);
        if (!_byKey.TryGetValue(key, out var series))
        {
            series = _series.GetOrAdd(Labels(r), static l => new Series(l));
            if (_byKey.Count >= MaxCachedKeys)
            {
                _byKey.Clear();
            }
            _byKey.TryAdd(key, series);
        }
        lock (series)
        {
            series.Count++;
            series.Duration.Observe(durationMs);
            series.RequestBytes.Observe(r.RequestBytes);
            series.ResponseBytes.Observe(r.ResponseBytes);
        }
    }

    public void Refused(string reason) => _refused.AddOrUpdate(reason, 1, static (_, v) => v + 1);

    public void ConfigReload(bool ok) => _reloads.AddOrUpdate(ok ? "success" : "failure", 1, static (_, v) => v + 1);

    /// <summary>Istio's standard labels, in Istio's order; "unknown" where the mesh does not know a value.</summary>
    internal static string Labels(RequestRecord r)
    {
        var sb = new StringBuilder(640);
        PeerLabels(sb, r.Tunnel, r.DestinationWorkload, r.DestinationService);
        Add(sb, "request_protocol", r.Grpc ? "grpc" : "http");
        Add(sb, "response_code", r.Status.ToString(CultureInfo.InvariantCulture));
        Add(sb, "grpc_response_status", r.GrpcStatus ?? "");
        Add(sb, "response_flags", r.ResponseFlags);
        Add(sb, "connection_security_policy", "mutual_tls");
        return sb.ToString(0, sb.Length - 1);
    }

    /// <summary>The labels of Istio's TCP metrics: the same peers, <c>request_protocol="tcp"</c>, no response code.</summary>
    internal static string TcpLabels(TunnelInfo tunnel, Workload? destination, Service? service, string responseFlags)
    {
        var sb = new StringBuilder(600);
        PeerLabels(sb, tunnel, destination, service);
        Add(sb, "request_protocol", "tcp");
        Add(sb, "response_flags", responseFlags);
        Add(sb, "connection_security_policy", "mutual_tls");
        return sb.ToString(0, sb.Length - 1);
    }

    /// <summary>A TCP connection relayed (or refused): opened, then closed with the bytes each way.</summary>
    public void TcpOpened(string labels) => _tcp.GetOrAdd(labels, static l => new TcpSeries(l)).Opened();

    /// <param name="received">Bytes from the client (Istio's <c>istio_tcp_received_bytes_total</c>).</param>
    /// <param name="sent">Bytes to the client (<c>istio_tcp_sent_bytes_total</c>).</param>
    public void TcpClosed(string labels, long received, long sent) => _tcp.GetOrAdd(labels, static l => new TcpSeries(l)).Closed(received, sent);

    private static void PeerLabels(StringBuilder sb, TunnelInfo tunnel, Workload? dst, Service? svc)
    {
        var src = tunnel.SourceWorkload;
        Add(sb, "reporter", "waypoint");
        Add(sb, "source_workload", WorkloadName(src));
        Add(sb, "source_canonical_service", CanonicalService(src));
        Add(sb, "source_canonical_revision", CanonicalRevision(src));
        Add(sb, "source_workload_namespace", src?.Namespace ?? tunnel.Peer.Namespace);
        Add(sb, "source_principal", tunnel.Peer.ToString());
        Add(sb, "source_app", Label(src, "app") ?? CanonicalService(src));
        Add(sb, "source_version", Label(src, "version") ?? CanonicalRevision(src));
        Add(sb, "source_cluster", Cluster(src));
        Add(sb, "destination_workload", WorkloadName(dst));
        Add(sb, "destination_workload_namespace", dst?.Namespace ?? svc?.Namespace ?? "unknown");
        Add(sb, "destination_principal", dst is null ? "unknown" : dst.SpiffeId(tunnel.Peer.TrustDomain));
        Add(sb, "destination_app", Label(dst, "app") ?? CanonicalService(dst));
        Add(sb, "destination_version", Label(dst, "version") ?? CanonicalRevision(dst));
        Add(sb, "destination_service", svc?.Hostname ?? "unknown");
        Add(sb, "destination_service_name", svc?.Name ?? "unknown");
        Add(sb, "destination_service_namespace", svc?.Namespace ?? "unknown");
        Add(sb, "destination_canonical_service", CanonicalService(dst));
        Add(sb, "destination_canonical_revision", CanonicalRevision(dst));
        Add(sb, "destination_cluster", Cluster(dst));
    }

    private static string WorkloadName(Workload? w) => w is null ? "unknown" : w.WorkloadName.Length > 0 ? w.WorkloadName : w.Name;

    private static string CanonicalService(Workload? w) =>
        w is null ? "unknown" : w.CanonicalName.Length > 0 ? w.CanonicalName : Label(w, "app") ?? WorkloadName(w);

    private static string CanonicalRevision(Workload? w) =>
        w is null ? "unknown" : w.CanonicalRevision.Length > 0 ? w.CanonicalRevision : Label(w, "version") ?? "latest";

    private static string Cluster(Workload? w) => w is null || w.ClusterId.Length == 0 ? "unknown" : w.ClusterId;

    private static string? Label(Workload? w, string key) => w is not null && w.Labels.TryGetValue(key, out var v) ? v : null;

    private static void Add(StringBuilder sb, string name, string value)
    {
        sb.Append(name).Append("=\"");
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
        sb.Append("\",");
    }

    /// <summary>The Prometheus text exposition (format 0.0.4).</summary>
    public string Render()
    {
        var sb = new StringBuilder(4096);
        var all = _series.Values.OrderBy(s => s.Labels, StringComparer.Ordinal).ToArray();
        sb.Append("# HELP istio_requests_total Requests handled by the waypoint.\n# TYPE istio_requests_total counter\n");
        foreach (var s in all)
        {
            lock (s)
            {
                sb.Append("istio_requests_total{").Append(s.Labels).Append("} ").Append(s.Count).Append('\n');
            }
        }
        RenderHistogram(sb, all, "istio_request_duration_milliseconds", "Request duration in milliseconds.", static s => s.Duration);
        RenderHistogram(sb, all, "istio_request_bytes", "Request size in bytes (headers and body).", static s => s.RequestBytes);
        RenderHistogram(sb, all, "istio_response_bytes", "Response size in bytes (headers and body).", static s => s.ResponseBytes);
        RenderTcp(sb);
        sb.Append("# HELP istio_build Istio component build info.\n# TYPE istio_build gauge\n");
        sb.Append("istio_build{component=\"waypoint\",tag=\"").Append(Version).Append("\"} 1\n");
        sb.Append("# HELP ambient_waypoint_refused_total HBONE connections and tunnels refused before any request.\n# TYPE ambient_waypoint_refused_total counter\n");
        foreach (var kv in _refused.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            sb.Append("ambient_waypoint_refused_total{reason=\"").Append(kv.Key).Append("\"} ").Append(kv.Value).Append('\n');
        }
        sb.Append("# HELP ambient_config_reloads_total Mesh config reloads by result.\n# TYPE ambient_config_reloads_total counter\n");
        foreach (var kv in _reloads.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            sb.Append("ambient_config_reloads_total{result=\"").Append(kv.Key).Append("\"} ").Append(kv.Value).Append('\n');
        }
        lock (_collectors)
        {
            foreach (var render in _collectors)
            {
                render(sb);
            }
        }
        return sb.ToString();
    }

    private static void RenderHistogram(StringBuilder sb, Series[] all, string name, string help, Func<Series, Histogram> pick)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(" histogram\n");
        foreach (var s in all)
        {
            lock (s)
            {
                var h = pick(s);
                long cumulative = 0;
                for (int i = 0; i < Buckets.Length; i++)
                {
                    cumulative += h.Counts[i];
                    sb.Append(name).Append("_bucket{").Append(s.Labels).Append(",le=\"").Append(Buckets[i].ToString(CultureInfo.InvariantCulture)).Append("\"} ").Append(cumulative).Append('\n');
                }
                sb.Append(name).Append("_bucket{").Append(s.Labels).Append(",le=\"+Inf\"} ").Append(h.Count).Append('\n');
                sb.Append(name).Append("_sum{").Append(s.Labels).Append("} ").Append(h.Sum.ToString(CultureInfo.InvariantCulture)).Append('\n');
                sb.Append(name).Append("_count{").Append(s.Labels).Append("} ").Append(h.Count).Append('\n');
            }
        }
    }

    private void RenderTcp(StringBuilder sb)
    {
        var all = _tcp.Values.OrderBy(s => s.Labels, StringComparer.Ordinal).ToArray();
        void Counter(string name, string help, Func<TcpSeries, long> value)
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(" counter\n");
            foreach (var s in all)
            {
                sb.Append(name).Append('{').Append(s.Labels).Append("} ").Append(value(s)).Append('\n');
            }
        }
        Counter("istio_tcp_connections_opened_total", "TCP connections opened through the waypoint.", static s => Interlocked.Read(ref s.OpenedCount));
        Counter("istio_tcp_connections_closed_total", "TCP connections closed through the waypoint.", static s => Interlocked.Read(ref s.ClosedCount));
        Counter("istio_tcp_received_bytes_total", "Bytes received from TCP clients.", static s => Interlocked.Read(ref s.Received));
        Counter("istio_tcp_sent_bytes_total", "Bytes sent to TCP clients.", static s => Interlocked.Read(ref s.Sent));
    }

    private sealed class TcpSeries(string labels)
    {
        public readonly string Labels = labels;
        public long OpenedCount;
        public long ClosedCount;
        public long Received;
        public long Sent;

        public void Opened() => Interlocked.Increment(ref OpenedCount);

        public void Closed(long received, long sent)
        {
            Interlocked.Add(ref Received, received);
            Interlocked.Add(ref Sent, sent);
            Interlocked.Increment(ref ClosedCount);
        }
    }

    /// <summary>What <see cref="Labels"/> reads from a record: snapshot objects by reference, the rest by value.</summary>
    private readonly record struct SeriesKey(SpiffeId Peer, Workload? Source, Workload? Destination, Service? Service, bool Grpc, int Status, string? GrpcStatus, string Flags)
    {
        public bool Equals(SeriesKey other) =>
            ReferenceEquals(Source, other.Source) && ReferenceEquals(Destination, other.Destination) && ReferenceEquals(Service, other.Service)
            && Status == other.Status && Grpc == other.Grpc && Peer.Equals(other.Peer)
            && string.Equals(Flags, other.Flags, StringComparison.Ordinal) && string.Equals(GrpcStatus, other.GrpcStatus, StringComparison.Ordinal);

        public override int GetHashCode() => HashCode.Combine(
            Peer, RuntimeHelpers.GetHashCode(Source), RuntimeHelpers.GetHashCode(Destination), RuntimeHelpers.GetHashCode(Service), Status, Flags);
    }

    private sealed class Series(string labels)
    {
        public readonly string Labels = labels;
        public long Count;
        public readonly Histogram Duration = new();
        public readonly Histogram RequestBytes = new();
        public readonly Histogram ResponseBytes = new();
    }

    private sealed class Histogram
    {
        public readonly long[] Counts = new long[Buckets.Length];
        public long Count;
        public double Sum;

        public void Observe(double value)
        {
            Count++;
            Sum += value;
            int i = Array.BinarySearch(Buckets, value);
            if (i < 0)
            {
                i = ~i;
            }
            if (i < Buckets.Length)
            {
                Counts[i]++;
            }
        }
    }
}
