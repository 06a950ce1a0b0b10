using System.Net;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Model;
using Ambient.Waypoint.Hbone;
using Ambient.Waypoint.Telemetry;
using Xunit;

namespace Ambient.Waypoint.Tests.Metrics;

/// <summary>
/// The per-request series lookup: requests with equal labels share one series whether they reuse the snapshot's
/// objects (the cached key) or carry equal copies from a newer snapshot (the rendered labels), and a repeated series
/// is counted without building its label text again.
/// </summary>
public sealed class WaypointMetricsTests
{
    private static readonly Workload Client = new() { Uid = "c", Name = "client", Namespace = "shop", ServiceAccount = "client", Labels = System.Collections.Immutable.ImmutableDictionary<string, string>.Empty.Add("app", "client") };
    private static readonly Workload Server = new() { Uid = "s", Name = "echo-v1", Namespace = "shop", ServiceAccount = "echo", Labels = System.Collections.Immutable.ImmutableDictionary<string, string>.Empty.Add("app", "echo").Add("version", "v1") };
    private static readonly Service Echo = new() { Name = "echo", Namespace = "shop", Hostname = "echo.shop.svc.cluster.local" };

    private static RequestRecord Record(Workload source, Workload destination, Service service, int status, string flags = "-")
    {
        var tunnel = new TunnelInfo(new SpiffeId("cluster.local", "shop", "client"), new IPEndPoint(IPAddress.Parse("10.0.2.1"), 40000),
            new IPEndPoint(IPAddress.Parse("10.0.0.1"), 80), service, null, source);
        return new RequestRecord(tunnel, 0) { DestinationService = service, DestinationWorkload = destination, Status = status, ResponseFlags = flags };
    }

    /// <summary>The sum of istio_requests_total over the series whose labels contain every fragment.</summary>
    private static long Count(string exposition, params string[] fragments) => exposition.Split('\n')
        .Where(l => l.StartsWith("istio_requests_total{", StringComparison.Ordinal) && fragments.All(f => l.Contains(f, StringComparison.Ordinal)))
        .Sum(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void EqualLabelsShareASeriesAcrossSnapshotCopies()
    {
        var metrics = new WaypointMetrics();
        metrics.Record(Record(Client, Server, Echo, 200), 1);
        metrics.Record(Record(Client, Server, Echo, 200), 1);
        // A config reload makes new, equal objects: the same series, not a second one with the same labels.
        metrics.Record(Record(Client with { }, Server with { }, Echo with { }, 200), 1);
        metrics.Record(Record(Client, Server, Echo, 503, "UF"), 1);
        // A changed workload (another version label) is another series even though its key objects are new.
        metrics.Record(Record(Client, Server with { Labels = Server.Labels.SetItem("version", "v2") }, Echo, 200), 1);

        string text = metrics.Render();
        Assert.Equal(3, Count(text, "destination_version=\"v1\"", "response_code=\"200\""));
        Assert.Equal(1, Count(text, "destination_version=\"v1\"", "response_code=\"503\"", "response_flags=\"UF\""));
        Assert.Equal(1, Count(text, "destination_version=\"v2\""));
        Assert.Equal(3, text.Split('\n').Count(l => l.StartsWith("istio_requests_total{", StringComparison.Ordinal)));
    }

    [Fact]
    public void ARepeatedSeriesIsCountedWithoutRenderingItsLabels()
    {
        var metrics = new WaypointMetrics();
        var record = Record(Client, Server, Echo, 200);
        metrics.Record(record, 1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            metrics.Record(record, 1);
        }
        long perRequest = (GC.GetAllocatedBytesForCurrentThread() - before) / 1000;
        // Rendering Istio's labels costs over a kilobyte of text per request; the cached lookup allocates nothing.
        Assert.True(perRequest < 64, $"{perRequest} bytes allocated per recorded request");
        Assert.Equal(1001, Count(metrics.Render(), "reporter=\"waypoint\""));
    }
}
