using Ambient.Mesh.Governance;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Model;
using Ambient.Mesh.Model.L7;
using Ambient.Waypoint.Governance;
using Ambient.Waypoint.Routing;
using Microsoft.Extensions.Time.Testing;

namespace Ambient.Waypoint.Tests.Governance;

/// <summary>Limiters and breakers kept across config pushes, connectionPool admission, route policies, fault odds.</summary>
public sealed class GovernanceStateTests
{
    private static readonly Service Echo = new() { Name = "echo", Namespace = "shop", Hostname = "echo.shop.svc.cluster.local" };

    private static HttpLocalRateLimitPolicy Policy(uint total) => new()
    {
        Name = "rl",
        Namespace = "shop",
        TargetRef = new RateLimitTarget("", "Service", "echo"),
        TotalRequestsPerSecond = total,
        Overrides = [new RateLimitOverride(5, [new RateLimitClientRef("batch", null)])],
    };

    [Fact]
    public void ALimiterSurvivesAPushThatDoesNotChangeItsLimitsAndIsRebuiltWhenTheyChange()
    {
        var time = new FakeTimeProvider();
        var state = new GovernanceState(time);
        var first = state.Limiter(Policy(1));
        var client = new SpiffeId("cluster.local", "shop", "client");
        Assert.Equal(RateLimitVerdict.Allowed, first.TryAcquire(client));
        Assert.Equal(RateLimitVerdict.Total, first.TryAcquire(client));

        // A new object with the same limits (a re-parse after an unrelated change) keeps the drained bucket.
        var same = state.Limiter(Policy(1) with { Overrides = [new RateLimitOverride(5, [new RateLimitClientRef("batch", null)])] });
        Assert.Same(first, same);
        Assert.Equal(RateLimitVerdict.Total, same.TryAcquire(client));

        var changed = state.Limiter(Policy(3));
        Assert.NotSame(first, changed);
        Assert.Equal(RateLimitVerdict.Allowed, changed.TryAcquire(client));
        Assert.Equal(1, state.LimiterCount);
    }

    [Fact]
    public void StateOfServicesAndPoliciesThatAreGoneIsDropped()
    {
        var state = new GovernanceState(new FakeTimeProvider());
        state.Limiter(Policy(1));
        state.For(Ambient.Mesh.State.MeshSnapshot.Empty, new Backend(Echo, 80, null, null));
        Assert.Equal(1, state.LimiterCount);
        Assert.Equal(1, state.DestinationCount);
        state.Sweep(Ambient.Mesh.State.MeshSnapshot.Empty);
        Assert.Equal(0, state.LimiterCount);
        Assert.Equal(0, state.DestinationCount);
    }

    public static TheoryData<string, int?, int?, int?, bool, int, int> Admissions => new()
    {
        // name, maxConnections, http1MaxPendingRequests, http2MaxRequests, http1, admitted at once, refused
        { "defaults admit everything", null, null, null, true, 50, 0 },
        { "http2MaxRequests caps requests in flight", null, null, 2, false, 2, 1 },
        { "http/1.1: one connection, one pending, the third refused", 1, 1, null, true, 1, 1 },
        { "http/2 requests share a connection: maxConnections does not bound them", 1, 1, null, false, 50, 0 },
    };

    [Theory]
    [MemberData(nameof(Admissions))]
    public async Task ConnectionPoolLimitsAdmitOrRefuseAtOnce(string name, int? maxConnections, int? maxPending, int? maxRequests, bool http1, int admitted, int refused)
    {
        var pool = new ConnectionPoolSettings(
            new TcpSettings { MaxConnections = maxConnections },
            new HttpSettings { Http1MaxPendingRequests = maxPending, Http2MaxRequests = maxRequests });
        var d = new DestinationGovernance(new Backend(Echo, 80, null, null), new TrafficPolicy { ConnectionPool = pool }, new FakeTimeProvider());
        var held = new List<DestinationGovernance.Admission>();
        for (int i = 0; i < admitted; i++)
        {
            var a = await d.AdmitAsync(http1, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.True(a is not null, $"{name}: request {i} refused");
            held.Add(a);
        }
        // With a pending slot, the next HTTP/1.1 request waits for a connection instead of being refused.
        Task<DestinationGovernance.Admission?>? waiting = null;
        if (http1 && maxPending is > 0)
        {
            waiting = d.AdmitAsync(http1, CancellationToken.None).AsTask();
            Assert.False(waiting.IsCompleted, $"{name}: the pending request should wait");
            Assert.Equal(0, d.Breaker.Pending.Remaining);
        }
        for (int i = 0; i < refused; i++)
        {
            Assert.True(await d.AdmitAsync(http1, CancellationToken.None) is null, $"{name}: overflow was admitted");
        }
        held[0].Dispose();
        held[0].Dispose(); // twice is harmless
        if (waiting is not null)
        {
            using var late = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.NotNull(late);
        }
        foreach (var a in held.Skip(1))
        {
            a.Dispose();
        }
        Assert.Equal(d.Breaker.Requests.Limit, d.Breaker.Requests.Remaining);
    }

    [Fact]
    public async Task AWaitForAConnectionEndsAtTheRouteTimeoutAndGivesItsSlotsBack()
    {
        var time = new FakeTimeProvider();
        var pool = new ConnectionPoolSettings(new TcpSettings { MaxConnections = 1 }, new HttpSettings { Http1MaxPendingRequests = 1 });
        var d = new DestinationGovernance(new Backend(Echo, 80, null, null), new TrafficPolicy { ConnectionPool = pool }, time);
        using var busy = await d.AdmitAsync(http1: true, CancellationToken.None);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(1), time);
        var waiting = Governor.AdmitAsync(d, http1: true, deadline, CancellationToken.None).AsTask();
        Assert.False(waiting.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(1, d.Breaker.Pending.Remaining);
        Assert.Equal(d.Breaker.Requests.Limit - 1, d.Breaker.Requests.Remaining);
    }

    [Fact]
    public void RoutePoliciesFollowIstio()
    {
        (string Name, RoutePolicy Policy, TimeSpan? Timeout, int Retries, TimeSpan? PerTry)[] cases =
        [
            ("nothing set: Istio's mesh default", RoutePolicy.From(new HttpRouteRule()), null, 2, null),
            ("HTTPRoute request + backendRequest", RoutePolicy.From(new HttpRouteRule { Timeouts = new HttpRouteTimeouts(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(1)) }), TimeSpan.FromSeconds(3), 2, TimeSpan.FromSeconds(1)),
            ("HTTPRoute timeout 0s disables", RoutePolicy.From(new HttpRouteRule { Timeouts = new HttpRouteTimeouts(TimeSpan.Zero, null) }), null, 2, null),
            ("HTTPRoute retry attempts", RoutePolicy.From(new HttpRouteRule { Retry = new HttpRouteRetry([503], 4, null) }), null, 4, null),
            ("VirtualService timeout and retries", RoutePolicy.From(new VirtualServiceHttpRoute { Timeout = TimeSpan.FromSeconds(2), Retries = new HttpRetry { Attempts = 3, PerTryTimeout = TimeSpan.FromMilliseconds(500) } }), TimeSpan.FromSeconds(2), 3, TimeSpan.FromMilliseconds(500)),
            ("VirtualService retries attempts 0", RoutePolicy.From(new VirtualServiceHttpRoute { Retries = new HttpRetry { Attempts = 0 } }), null, 0, null),
        ];
        foreach (var (name, policy, timeout, retries, perTry) in cases)
        {
            Assert.True(timeout == policy.Timeout, $"{name}: timeout {policy.Timeout}");
            Assert.True(retries == policy.Retry.Attempts, $"{name}: attempts {policy.Retry.Attempts}");
            Assert.True(perTry == policy.Retry.PerTryTimeout, $"{name}: per try {policy.Retry.PerTryTimeout}");
        }
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(100, 1000)]
    [InlineData(25, 250)]
    public void FaultPercentageHitsThatShareOfRequests(double percentage, int hits)
    {
        var random = new StepRandom(1000);
        int n = 0;
        for (int i = 0; i < 1000; i++)
        {
            n += Governor.Hit(percentage, random) ? 1 : 0;
        }
        Assert.Equal(hits, n);
    }

    /// <summary>Walks [0, 1) in equal steps, so a percentage hits exactly that share.</summary>
    private sealed class StepRandom(int steps) : Random
    {
        private int _i;

        public override double NextDouble() => (double)(_i++ % steps) / steps;
    }
}
