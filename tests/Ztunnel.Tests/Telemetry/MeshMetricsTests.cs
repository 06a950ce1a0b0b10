using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Telemetry;

namespace Ambient.Ztunnel.Tests.Telemetry;

/// <summary>
/// The Prometheus exposition the agent serves on 15020: Istio's metric names, label names in Istio's order, values
/// escaped as the text format requires, one series per label set, and the agent's own counters.
/// </summary>
public sealed class MeshMetricsTests
{
    private static readonly Workload Client = new()
    {
        Uid = "uid/client",
        Name = "client-7d9f",
        Namespace = "shop",
        WorkloadName = "client",
        CanonicalName = "client-app",
        CanonicalRevision = "v2",
        ClusterId = "Kubernetes",
        WorkloadIps = [IPAddress.Parse("127.40.0.1")],
    };

    private static readonly Workload Server = new()
    {
        Uid = "uid/server",
        Name = "server-0",
        Namespace = "shop",
        WorkloadIps = [IPAddress.Parse("127.40.0.2")],
    };

    private static readonly Service Web = new()
    {
        Name = "web",
        Namespace = "shop",
        Hostname = "web.shop.svc.cluster.local",
        Ports = ImmutableDictionary<int, int>.Empty.Add(80, 8080),
    };

    private static string[] Lines(MeshMetrics m, string name) =>
        [.. m.Render().Split('\n').Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) || l.StartsWith(name + " ", StringComparison.Ordinal))];

    [Fact]
    public void TcpSeries_CarryIstiosLabels_InIstiosOrder()
    {
        var m = new MeshMetrics { Version = "1.2.3" };
        var labels = new TcpLabels
        {
            Reporter = "destination",
            Source = Client,
            SourcePrincipal = "spiffe://cluster.local/ns/shop/sa/client",
            Destination = Server,
            DestinationPrincipal = "spiffe://cluster.local/ns/shop/sa/server",
            DestinationService = Web,
            MutualTls = true,
        };
        var c = m.For(labels.ToKey());
        m.ConnectionOpened(c);
        m.ConnectionOpened(c);
        m.ConnectionClosed(c);
        Interlocked.Add(ref c.SentBytes, 300);
        Interlocked.Add(ref c.ReceivedBytes, 1200);

        const string Expected = "reporter=\"destination\",source_workload=\"client\",source_canonical_service=\"client-app\","
            + "source_canonical_revision=\"v2\",source_workload_namespace=\"shop\",source_principal=\"spiffe://cluster.local/ns/shop/sa/client\","
            + "source_cluster=\"Kubernetes\",destination_service=\"web.shop.svc.cluster.local\",destination_service_namespace=\"shop\","
            + "destination_service_name=\"web\",destination_workload=\"server-0\",destination_canonical_service=\"server-0\","
            + "destination_canonical_revision=\"latest\",destination_workload_namespace=\"shop\","
            + "destination_principal=\"spiffe://cluster.local/ns/shop/sa/server\",destination_cluster=\"unknown\",request_protocol=\"tcp\","
            + "response_flags=\"-\",connection_security_policy=\"mutual_tls\"";
        Assert.Equal([$"istio_tcp_connections_opened_total{{{Expected}}} 2"], Lines(m, "istio_tcp_connections_opened_total"));
        Assert.Equal([$"istio_tcp_connections_closed_total{{{Expected}}} 1"], Lines(m, "istio_tcp_connections_closed_total"));
        Assert.Equal([$"istio_tcp_sent_bytes_total{{{Expected}}} 300"], Lines(m, "istio_tcp_sent_bytes_total"));
        Assert.Equal([$"istio_tcp_received_bytes_total{{{Expected}}} 1200"], Lines(m, "istio_tcp_received_bytes_total"));
        Assert.Equal(["istio_build{component=\"ztunnel\",tag=\"1.2.3\"} 1"], Lines(m, "istio_build"));
        Assert.Equal(["ambient_connections_active 1"], Lines(m, "ambient_connections_active"));

        string text = m.Render();
        Assert.Contains("# TYPE istio_tcp_connections_opened_total counter\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE istio_build gauge\n", text, StringComparison.Ordinal);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void EqualLabelSets_ShareOneSeries_OthersGetTheirOwn_AndValuesAreEscaped()
    {
        var m = new MeshMetrics();
        var a = new TcpLabels { Reporter = "source", Source = Client, Destination = Server };
        // Another key object (the cache is by reference), same rendering: the same counters.
        Assert.Same(m.For(a.ToKey()), m.For((a with { }).ToKey()));
        Assert.Same(m.For(a.ToKey()), m.For(a));
        m.ConnectionOpened(m.For(a.ToKey()));
        m.ConnectionOpened(m.For(a with { ResponseFlags = "DENY" }));
        var odd = Server with { Uid = "uid/odd", Name = "we\"ird\\name\nx" };
        m.ConnectionOpened(m.For(a with { Destination = odd }));

        var opened = Lines(m, "istio_tcp_connections_opened_total");
        Assert.Equal(3, opened.Length);
        Assert.Single(opened, l => l.Contains("response_flags=\"DENY\"", StringComparison.Ordinal));
        Assert.Single(opened, l => l.Contains("destination_workload=\"we\\\"ird\\\\name\\nx\"", StringComparison.Ordinal));
        // Unknown parts are "unknown", never empty.
        Assert.All(opened, l => Assert.Contains("source_principal=\"unknown\"", l, StringComparison.Ordinal));
    }

    [Fact]
    public void AgentCounters_RenderWithTheirLabels()
    {
        var m = new MeshMetrics();
        m.Refused("inbound", "mtls_strict");
        m.Refused("inbound", "mtls_strict");
        m.Refused("hbone", "tls_handshake");
        m.ConfigReload(ok: true);
        m.ConfigReload(ok: false);
        m.CertificateRenewalFailed();
        m.HboneIdleClosed();

        Assert.Equal(
            new SortedSet<string>(["ambient_connections_refused_total{listener=\"inbound\",reason=\"mtls_strict\"} 2", "ambient_connections_refused_total{listener=\"hbone\",reason=\"tls_handshake\"} 1"], StringComparer.Ordinal),
            new SortedSet<string>(Lines(m, "ambient_connections_refused_total"), StringComparer.Ordinal));
        Assert.Equal(2, m.RefusalCount("inbound", "mtls_strict"));
        Assert.Equal(
            new SortedSet<string>(["ambient_config_reloads_total{result=\"success\"} 1", "ambient_config_reloads_total{result=\"rejected\"} 1"], StringComparer.Ordinal),
            new SortedSet<string>(Lines(m, "ambient_config_reloads_total"), StringComparer.Ordinal));
        Assert.Equal(["ambient_certificate_renewal_failures_total 1"], Lines(m, "ambient_certificate_renewal_failures_total"));
        Assert.Equal(["ambient_hbone_idle_closed_total 1"], Lines(m, "ambient_hbone_idle_closed_total"));
    }
}
