using System.Collections.Concurrent;
using System.Text;

namespace Ambient.Ztunnel.Telemetry;

/// <summary>The counters of one label set; connections hold a reference and add to it without lookups.</summary>
internal sealed class TcpCounters(string labels)
{
    public readonly string Labels = labels;
    public long Opened;
    public long Closed;
    public long SentBytes;
    public long ReceivedBytes;
}

/// <summary>
/// The agent's Prometheus registry: Istio's L4 metrics (<c>istio_tcp_*</c>, <c>istio_build</c>) plus the agent's own
/// (<c>ambient_*</c>). Rendered in the Prometheus text format on the metrics port.
/// </summary>
internal sealed class MeshMetrics
{
    private readonly ConcurrentDictionary<string, TcpCounters> _tcp = new(StringComparer.Ordinal);
    private ConcurrentDictionary<TcpLabels.Key, TcpCounters> _byKey = new(TcpLabels.KeyComparer.Instance);
    private readonly ConcurrentDictionary<string, long> _refusals = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _configReloads = new(StringComparer.Ordinal);
    private long _certRenewalFailures;
    private long _certificatesIssued;
    private long _activeConnections;

    public string Version { get; init; } = typeof(MeshMetrics).Assembly.GetName().Version?.ToString(3) ?? "dev";

    public TcpCounters For(TcpLabels labels) => _tcp.GetOrAdd(labels.Render(), static l => new TcpCounters(l));

    /// <summary>
    /// The counters for a label set, found by reference in the common case; only a label set not seen since the
    /// last config change is rendered (and then shares the counters of an equal rendering).
    /// </summary>
    public TcpCounters For(in TcpLabels.Key key)
    {
        var cache = Volatile.Read(ref _byKey);
        if (cache.TryGetValue(key, out var counters))
        {
            return counters;
        }
        counters = For(new TcpLabels
        {
            Reporter = key.Reporter,
            Source = key.Source,
            SourcePrincipal = key.SourcePrincipal,
            Destination = key.Destination,
            DestinationPrincipal = key.DestinationPrincipal,
            DestinationService = key.DestinationService,
            ResponseFlags = key.ResponseFlags,
            MutualTls = key.MutualTls,
        });
        cache.TryAdd(key, counters);
        return counters;
    }

    /// <summary>Called when the config snapshot changes: the cache holds old snapshot objects, so start afresh.</summary>
    public void ForgetLabelCache() => Volatile.Write(ref _byKey, new ConcurrentDictionary<TcpLabels.Key, TcpCounters>(TcpLabels.KeyComparer.Instance));

    public void ConnectionOpened(TcpCounters c)
    {
        Interlocked.Increment(ref c.Opened);
        Interlocked.Increment(ref _activeConnections);
    }

    public void ConnectionClosed(TcpCounters c)
    {
        Interlocked.Increment(ref c.Closed);
        Interlocked.Decrement(ref _activeConnections);
    }

    /// <summary>A connection or handshake refused before any labels could be known (e.g. bad TLS, garbage).</summary>
    public void Refused(string listener, string reason) =>
        _refusals.AddOrUpdate($"listener=\"{listener}\",reason=\"{reason}\"", 1, static (_, v) => v + 1);

    public void ConfigReload(bool ok) =>
        _configReloads.AddOrUpdate(ok ? "result=\"success\"" : "result=\"rejected\"", 1, static (_, v) => v + 1);

    public void CertificateRenewalFailed() => Interlocked.Increment(ref _certRenewalFailures);

    public void CertificateIssued() => Interlocked.Increment(ref _certificatesIssued);

    public long ActiveConnections => Interlocked.Read(ref _activeConnections);

    public long RefusalCount(string listener, string reason) =>
        _refusals.TryGetValue($"listener=\"{listener}\",reason=\"{reason}\"", out var v) ? v : 0;

    public string Render()
    {
        var sb = new StringBuilder(4096);
        Family(sb, "istio_tcp_connections_opened_total", "counter", "The total number of TCP connections opened.");
        foreach (var c in _tcp.Values)
        {
            Sample(sb, "istio_tcp_connections_opened_total", c.Labels, Interlocked.Read(ref c.Opened));
        }
        Family(sb, "istio_tcp_connections_closed_total", "counter", "The total number of TCP connections closed.");
        foreach (var c in _tcp.Values)
        {
            Sample(sb, "istio_tcp_connections_closed_total", c.Labels, Interlocked.Read(ref c.Closed));
        }
        Family(sb, "istio_tcp_received_bytes_total", "counter", "The size of total bytes received during request in case of a TCP connection.");
        foreach (var c in _tcp.Values)
        {
            Sample(sb, "istio_tcp_received_bytes_total", c.Labels, Interlocked.Read(ref c.ReceivedBytes));
        }
        Family(sb, "istio_tcp_sent_bytes_total", "counter", "The size of total bytes sent during response in case of a TCP connection.");
        foreach (var c in _tcp.Values)
        {
            Sample(sb, "istio_tcp_sent_bytes_total", c.Labels, Interlocked.Read(ref c.SentBytes));
        }
        Family(sb, "istio_build", "gauge", "Istio component build info.");
        Sample(sb, "istio_build", $"component=\"ztunnel\",tag=\"{Version}\"", 1);
        Family(sb, "ambient_connections_active", "gauge", "Proxied connections currently open.");
        Sample(sb, "ambient_connections_active", null, ActiveConnections);
        Family(sb, "ambient_connections_refused_total", "counter", "Connections refused before they could be attributed, by listener and reason.");
        foreach (var (labels, v) in _refusals)
        {
            Sample(sb, "ambient_connections_refused_total", labels, v);
        }
        Family(sb, "ambient_config_reloads_total", "counter", "Config file reloads, by result.");
        foreach (var (labels, v) in _configReloads)
        {
            Sample(sb, "ambient_config_reloads_total", labels, v);
        }
        Family(sb, "ambient_certificates_issued_total", "counter", "Workload certificates issued or renewed.");
        Sample(sb, "ambient_certificates_issued_total", null, Interlocked.Read(ref _certificatesIssued));
        Family(sb, "ambient_certificate_renewal_failures_total", "counter", "Failed workload certificate renewals (the old certificate stays in use).");
        Sample(sb, "ambient_certificate_renewal_failures_total", null, Interlocked.Read(ref _certRenewalFailures));
        return sb.ToString();
    }

    private static void Family(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
          .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Sample(StringBuilder sb, string name, string? labels, long value)
    {
        sb.Append(name);
        if (!string.IsNullOrEmpty(labels))
        {
            sb.Append('{').Append(labels).Append('}');
        }
        sb.Append(' ').Append(value).Append('\n');
    }
}
