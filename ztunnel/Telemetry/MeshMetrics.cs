using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace Ambient.Ztunnel.Telemetry;

/// <summary>The counters of one label set; connections hold a reference and add to it without lookups.</summary>
internal sealed class TcpCounters(string labels)
{
    public readonly string Labels = labels;
    /// <summary>The labels as UTF-8, encoded once: a scrape copies bytes, it doesn't re-encode strings.</summary>
    public readonly byte[] LabelsUtf8 = Encoding.UTF8.GetBytes(labels);
    public long Opened;
    public long Closed;
    public long SentBytes;
    public long ReceivedBytes;
}

/// <summary>
/// The agent's Prometheus registry: Istio's L4 metrics (<c>istio_tcp_*</c>, <c>istio_build</c>) plus the agent's own
/// (<c>ambient_*</c>). Rendered in the Prometheus text format on the metrics port.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "one registry for the process's life; its render gate never hands out a wait handle")]
internal sealed class MeshMetrics
{
    private readonly ConcurrentDictionary<string, TcpCounters> _tcp = new(StringComparer.Ordinal);
    private ConcurrentDictionary<TcpLabels.Key, TcpCounters> _byKey = new(TcpLabels.KeyComparer.Instance);
    private readonly ConcurrentDictionary<string, long> _refusals = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _configReloads = new(StringComparer.Ordinal);
    private long _certRenewalFailures;
    private readonly ConcurrentDictionary<string, long> _podCaRequests = new(StringComparer.Ordinal);
    private long _hboneIdleClosed;
    private long _activeConnections;

    /// <summary>The mesh store, for the per-source conflict gauges; null renders none.</summary>
    public Mesh.Sources.MeshStore? Store { get; init; }

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

    /// <summary>One CreateCertificate answered by the in-pod CA endpoint for waypoints: <paramref name="result"/> is signed, denied or invalid.</summary>
    public void PodCaRequest(string result) =>
        _podCaRequests.AddOrUpdate($"result=\"{result}\"", 1, static (_, v) => v + 1);

    public long PodCaRequests(string result) => _podCaRequests.TryGetValue($"result=\"{result}\"", out var v) ? v : 0;

    public void HboneIdleClosed() => Interlocked.Increment(ref _hboneIdleClosed);

    public long ActiveConnections => Interlocked.Read(ref _activeConnections);

    public long RefusalCount(string listener, string reason) =>
        _refusals.TryGetValue($"listener=\"{listener}\",reason=\"{reason}\"", out var v) ? v : 0;

    // One scrape renders at a time into a buffer that keeps its capacity, so a steady scrape allocates nothing
    // (a 1,000-series node would otherwise build megabytes of strings every 15 s).
    private readonly SemaphoreSlim _renderGate = new(1, 1);
    private readonly ArrayBufferWriter<byte> _rendered = new(16 * 1024);

    /// <summary>Writes the Prometheus text exposition to <paramref name="socket"/>.</summary>
    public async Task WriteToAsync(Socket socket)
    {
        await _renderGate.WaitAsync().ConfigureAwait(false);
        try
        {
            _rendered.ResetWrittenCount();
            RenderTo(_rendered);
            await socket.SendAsync(_rendered.WrittenMemory, SocketFlags.None).ConfigureAwait(false);
        }
        finally
        {
            _renderGate.Release();
        }
    }

    /// <summary>The exposition as a string (tests, diagnostics).</summary>
    public string Render()
    {
        _renderGate.Wait();
        try
        {
            _rendered.ResetWrittenCount();
            RenderTo(_rendered);
            return Encoding.UTF8.GetString(_rendered.WrittenSpan);
        }
        finally
        {
            _renderGate.Release();
        }
    }

    private void RenderTo(IBufferWriter<byte> w)
    {
        TcpFamily(w, "istio_tcp_connections_opened_total", "The total number of TCP connections opened.", static c => Interlocked.Read(ref c.Opened));
        TcpFamily(w, "istio_tcp_connections_closed_total", "The total number of TCP connections closed.", static c => Interlocked.Read(ref c.Closed));
        TcpFamily(w, "istio_tcp_received_bytes_total", "The size of total bytes received during request in case of a TCP connection.", static c => Interlocked.Read(ref c.ReceivedBytes));
        TcpFamily(w, "istio_tcp_sent_bytes_total", "The size of total bytes sent during response in case of a TCP connection.", static c => Interlocked.Read(ref c.SentBytes));
        Family(w, "istio_build", "gauge", "Istio component build info.");
        Sample(w, "istio_build", $"component=\"ztunnel\",tag=\"{Version}\"", 1);
        Family(w, "ambient_connections_active", "gauge", "Proxied connections currently open.");
        Sample(w, "ambient_connections_active", null, ActiveConnections);
        Family(w, "ambient_connections_refused_total", "counter", "Connections refused before they could be attributed, by listener and reason.");
        foreach (var (labels, v) in _refusals)
        {
            Sample(w, "ambient_connections_refused_total", labels, v);
        }
        Family(w, "ambient_config_reloads_total", "counter", "Config file reloads, by result.");
        foreach (var (labels, v) in _configReloads)
        {
            Sample(w, "ambient_config_reloads_total", labels, v);
        }
        Family(w, "ambient_certificate_renewal_failures_total", "counter", "Failed workload certificate renewals (the old certificate stays in use).");
        Sample(w, "ambient_certificate_renewal_failures_total", null, Interlocked.Read(ref _certRenewalFailures));
        Family(w, "ambient_pod_ca_requests_total", "counter", "CreateCertificate calls to the in-pod CA endpoint of waypoint pods, by result (signed, denied: another identity asked for, invalid).");
        foreach (var (labels, v) in _podCaRequests)
        {
            Sample(w, "ambient_pod_ca_requests_total", labels, v);
        }
        if (Store is { } store)
        {
            var sources = store.Sources;
            Family(w, "ambient_mesh_source_shadowed", "gauge", "Entries of a mesh source that another source also publishes and wins (higher precedence), by source.");
            foreach (var s in sources)
            {
                Sample(w, "ambient_mesh_source_shadowed", $"source=\"{LabelValue(s.Name)}\"", s.Shadowed);
            }
            Family(w, "ambient_mesh_source_refused", "gauge", "Entries of a mesh source refused because their IP or VIP belongs to another entry, by source.");
            foreach (var s in sources)
            {
                Sample(w, "ambient_mesh_source_refused", $"source=\"{LabelValue(s.Name)}\"", s.Refused.Length);
            }
        }
        Family(w, "ambient_hbone_idle_closed_total", "counter", "Server-side HBONE connections closed because they carried no stream for hboneIdleTimeout.");
        Sample(w, "ambient_hbone_idle_closed_total", null, Interlocked.Read(ref _hboneIdleClosed));
    }

    private void TcpFamily(IBufferWriter<byte> w, string name, string help, Func<TcpCounters, long> value)
    {
        Family(w, name, "counter", help);
        Span<byte> number = stackalloc byte[20];
        foreach (var c in _tcp.Values)
        {
            Ascii(w, name);
            w.Write("{"u8);
            w.Write(c.LabelsUtf8);
            w.Write("} "u8);
            value(c).TryFormat(number, out int n, default, System.Globalization.CultureInfo.InvariantCulture);
            w.Write(number[..n]);
            w.Write("\n"u8);
        }
    }

    private static string LabelValue(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);

    private static void Family(IBufferWriter<byte> w, string name, string type, string help)
    {
        w.Write("# HELP "u8);
        Ascii(w, name);
        w.Write(" "u8);
        Ascii(w, help);
        w.Write("\n# TYPE "u8);
        Ascii(w, name);
        w.Write(" "u8);
        Ascii(w, type);
        w.Write("\n"u8);
    }

    private static void Sample(IBufferWriter<byte> w, string name, string? labels, long value)
    {
        Ascii(w, name);
        if (!string.IsNullOrEmpty(labels))
        {
            w.Write("{"u8);
            Ascii(w, labels);
            w.Write("}"u8);
        }
        Span<byte> number = stackalloc byte[20];
        value.TryFormat(number, out int n, default, System.Globalization.CultureInfo.InvariantCulture);
        w.Write(" "u8);
        w.Write(number[..n]);
        w.Write("\n"u8);
    }

    private static void Ascii(IBufferWriter<byte> w, string s)
    {
        var span = w.GetSpan(Encoding.UTF8.GetMaxByteCount(s.Length));
        w.Advance(Encoding.UTF8.GetBytes(s, span));
    }
}
