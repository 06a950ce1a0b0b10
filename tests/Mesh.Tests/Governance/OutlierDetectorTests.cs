using Ambient.Mesh.Governance;
using Ambient.Mesh.Model.L7;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Ambient.Mesh.Tests.Governance;

public sealed class OutlierDetectorTests
{
    private static readonly string[] TenHosts = [.. Enumerable.Range(1, 10).Select(i => $"10.0.0.{i}:8080")];

    private static OutlierDetector<string> Detector(OutlierDetection settings, FakeTimeProvider clock, params string[] hosts)
    {
        OutlierDetector<string> d = new(settings, clock);
        d.SetHosts(hosts.Length > 0 ? hosts : TenHosts);
        return d;
    }

    private static void Fail(OutlierDetector<string> d, string host, int times, int status = 503)
    {
        for (int i = 0; i < times; i++)
        {
            d.Report(host, UpstreamOutcome.Response, status);
        }
    }

    [Fact]
    public void Five_consecutive_5xx_eject_by_default_and_a_success_resets_the_count()
    {
        FakeTimeProvider clock = new();
        OutlierDetector<string> d = Detector(new OutlierDetection(), clock);
        Fail(d, TenHosts[0], 4);
        d.Report(TenHosts[0], UpstreamOutcome.Response, 200);
        Fail(d, TenHosts[0], 4);
        Assert.False(d.IsEjected(TenHosts[0]));

        Fail(d, TenHosts[0], 1);
        Assert.True(d.IsEjected(TenHosts[0]));
        Assert.DoesNotContain(TenHosts[0], d.Select(TenHosts));
        Assert.Equal(9, d.Select(TenHosts).Count);
        Assert.Equal(1, d.EjectionsTotal);
    }

    [Theory]
    [InlineData(500, true)]
    [InlineData(503, true)]
    [InlineData(404, false)]
    [InlineData(429, false)]
    public void Which_statuses_count_as_errors(int status, bool ejects)
    {
        OutlierDetector<string> d = Detector(new OutlierDetection { Consecutive5xxErrors = 2 }, new FakeTimeProvider());
        Fail(d, TenHosts[0], 2, status);
        Assert.Equal(ejects, d.IsEjected(TenHosts[0]));
    }

    [Fact]
    public void Extra_error_codes_count_like_5xx()
    {
        OutlierDetector<string> d = Detector(new OutlierDetection { Consecutive5xxErrors = 2, OutlierDetectionHttpErrorCodes = [429] }, new FakeTimeProvider());
        Fail(d, TenHosts[0], 2, 429);
        Assert.True(d.IsEjected(TenHosts[0]));
    }

    [Fact]
    public void Gateway_errors_have_their_own_threshold_and_500_is_not_one()
    {
        OutlierDetection settings = new() { Consecutive5xxErrors = 0, ConsecutiveGatewayErrors = 3 };
        OutlierDetector<string> d = Detector(settings, new FakeTimeProvider());
        Fail(d, TenHosts[0], 10, 500);
        Assert.False(d.IsEjected(TenHosts[0]));
        Fail(d, TenHosts[1], 3, 502);
        Assert.True(d.IsEjected(TenHosts[1]));
    }

    [Fact]
    public void Local_failures_count_as_5xx_unless_split()
    {
        OutlierDetector<string> joined = Detector(new OutlierDetection { Consecutive5xxErrors = 2 }, new FakeTimeProvider());
        joined.Report(TenHosts[0], UpstreamOutcome.LocalFailure);
        joined.Report(TenHosts[0], UpstreamOutcome.LocalFailure);
        Assert.True(joined.IsEjected(TenHosts[0]));

        OutlierDetection split = new() { Consecutive5xxErrors = 2, SplitExternalLocalOriginErrors = true, ConsecutiveLocalOriginFailures = 3 };
        OutlierDetector<string> d = Detector(split, new FakeTimeProvider());
        d.Report(TenHosts[0], UpstreamOutcome.LocalFailure);
        d.Report(TenHosts[0], UpstreamOutcome.LocalFailure);
        Assert.False(d.IsEjected(TenHosts[0]));
        d.Report(TenHosts[0], UpstreamOutcome.LocalFailure);
        Assert.True(d.IsEjected(TenHosts[0]));
    }

    [Fact]
    public void Ejection_lasts_base_time_times_ejections_and_ends_at_a_sweep()
    {
        FakeTimeProvider clock = new();
        OutlierDetector<string> d = Detector(new OutlierDetection { Consecutive5xxErrors = 1, BaseEjectionTime = TimeSpan.FromSeconds(30) }, clock);
        List<TimeSpan> durations = [];
        List<string> returned = [];
        d.Ejected += (_, t) => durations.Add(t);
        d.Returned += returned.Add;

        Fail(d, TenHosts[0], 1);
        clock.Advance(TimeSpan.FromSeconds(29));
        d.Sweep();
        Assert.True(d.IsEjected(TenHosts[0]));
        clock.Advance(TimeSpan.FromSeconds(1));
        d.Sweep();
        Assert.False(d.IsEjected(TenHosts[0]));
        Assert.Equal([TenHosts[0]], returned);

        Fail(d, TenHosts[0], 1); // second ejection: 60 s
        Assert.Equal([TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60)], durations);

        // Healthy sweeps bring the multiplier back down: after two, a third ejection lasts 30 s again.
        clock.Advance(TimeSpan.FromSeconds(60));
        d.Sweep();          // returns
        d.Sweep();          // healthy: 2 -> 1
        d.Sweep();          // healthy: 1 -> 0
        Fail(d, TenHosts[0], 1);
        Assert.Equal(TimeSpan.FromSeconds(30), durations[^1]);
    }

    [Fact]
    public void Ejection_time_is_capped_at_300_seconds()
    {
        FakeTimeProvider clock = new();
        OutlierDetector<string> d = Detector(new OutlierDetection { Consecutive5xxErrors = 1, BaseEjectionTime = TimeSpan.FromSeconds(100) }, clock);
        TimeSpan last = default;
        d.Ejected += (_, t) => last = t;
        for (int i = 0; i < 5; i++)
        {
            Fail(d, TenHosts[0], 1);
            clock.Advance(TimeSpan.FromSeconds(400));
            d.Sweep();
        }

        Assert.Equal(TimeSpan.FromSeconds(300), last);
    }

    [Fact]
    public void Max_ejection_percent_bounds_ejections_but_one_host_can_always_go()
    {
        OutlierDetector<string> d = Detector(new OutlierDetection { Consecutive5xxErrors = 1 }, new FakeTimeProvider());
        foreach (string host in TenHosts)
        {
            Fail(d, host, 1);
        }

        Assert.Equal(1, d.EjectedCount); // 10% of 10

        OutlierDetector<string> two = Detector(new OutlierDetection { Consecutive5xxErrors = 1 }, new FakeTimeProvider(), "a", "b");
        Fail(two, "a", 1);
        Fail(two, "b", 1);
        Assert.Equal(1, two.EjectedCount); // 10% of 2 rounds to none, yet one goes

        OutlierDetector<string> all = Detector(new OutlierDetection { Consecutive5xxErrors = 1, MaxEjectionPercent = 100 }, new FakeTimeProvider(), "a", "b");
        Fail(all, "a", 1);
        Fail(all, "b", 1);
        Assert.Empty(all.Select(["a", "b"]));
    }

    [Fact]
    public void Below_min_health_percent_every_host_is_used_again()
    {
        OutlierDetection settings = new() { Consecutive5xxErrors = 1, MaxEjectionPercent = 100, MinHealthPercent = 50 };
        OutlierDetector<string> d = Detector(settings, new FakeTimeProvider(), "a", "b", "c", "d");
        Fail(d, "a", 1);
        Fail(d, "b", 1);
        Assert.Equal(["c", "d"], d.Select(["a", "b", "c", "d"])); // 50% healthy: at the floor, still filtered
        Fail(d, "c", 1);
        Assert.Equal(["a", "b", "c", "d"], d.Select(["a", "b", "c", "d"])); // 25%: panic
    }

    [Fact]
    public void Hosts_that_leave_take_their_ejection_with_them()
    {
        OutlierDetector<string> d = Detector(new OutlierDetection { Consecutive5xxErrors = 1 }, new FakeTimeProvider(), "a", "b");
        Fail(d, "a", 1);
        d.SetHosts(["b", "c"]);
        Assert.Equal(0, d.EjectedCount);
        d.Report("a", UpstreamOutcome.Response, 503); // unknown now: ignored
        Assert.False(d.IsEjected("a"));
    }
}
