using Ambient.Mesh.Governance;
using Ambient.Mesh.Model.L7;
using Xunit;

namespace Ambient.Mesh.Tests.Governance;

public sealed class RetryAndBreakerTests
{
    private static RetryPolicy On(params string[] conditions) => RetryPolicy.From(new HttpRetry { Attempts = 3, RetryOn = [.. conditions] });

    public static TheoryData<string, AttemptEnd, int, int?, bool> Conditions => new()
    {
        // condition, how the attempt ended, status, grpc-status, retried
        { "5xx", AttemptEnd.Response, 500, null, true },
        { "5xx", AttemptEnd.Response, 503, null, true },
        { "5xx", AttemptEnd.Reset, 0, null, true },
        { "5xx", AttemptEnd.ConnectFailure, 0, null, true },
        { "5xx", AttemptEnd.Response, 404, null, false },
        { "gateway-error", AttemptEnd.Response, 502, null, true },
        { "gateway-error", AttemptEnd.Response, 504, null, true },
        { "gateway-error", AttemptEnd.Response, 500, null, false },
        { "reset", AttemptEnd.Reset, 0, null, true },
        { "reset", AttemptEnd.Response, 503, null, false },
        { "connect-failure", AttemptEnd.ConnectFailure, 0, null, true },
        { "connect-failure", AttemptEnd.Reset, 0, null, false },
        { "retriable-4xx", AttemptEnd.Response, 409, null, true },
        { "retriable-4xx", AttemptEnd.Response, 400, null, false },
        { "refused-stream", AttemptEnd.RefusedStream, 0, null, true },
        { "refused-stream", AttemptEnd.Reset, 0, null, false },
        { "unavailable", AttemptEnd.Response, 200, 14, true },
        { "cancelled", AttemptEnd.Response, 200, 1, true },
        { "deadline-exceeded", AttemptEnd.Response, 200, 4, true },
        { "resource-exhausted", AttemptEnd.Response, 200, 8, true },
        { "internal", AttemptEnd.Response, 200, 13, true },
        { "unavailable", AttemptEnd.Response, 200, 13, false },
        { "418", AttemptEnd.Response, 418, null, true },
        { "418", AttemptEnd.Response, 419, null, false },
    };

    [Theory]
    [MemberData(nameof(Conditions))]
    public void Retry_on_conditions_have_envoys_meaning(string condition, AttemptEnd end, int status, int? grpc, bool retried)
    {
        Assert.Equal(retried, On(condition).Matches(new AttemptOutcome(end, status, grpc)));
    }

    [Fact]
    public void Istio_default_retries_connect_failures_and_refused_streams_not_503()
    {
        RetryPolicy p = RetryPolicy.From(HttpRetry.MeshDefault);
        Assert.Equal(2, p.Attempts);
        Assert.True(p.Matches(new AttemptOutcome(AttemptEnd.ConnectFailure)));
        Assert.True(p.Matches(new AttemptOutcome(AttemptEnd.RefusedStream)));
        Assert.True(p.Matches(AttemptOutcome.Response(200, 14)));
        Assert.False(p.Matches(AttemptOutcome.Response(503)));
        Assert.False(p.Matches(new AttemptOutcome(AttemptEnd.Reset)));
    }

    [Fact]
    public void HttpRoute_retry_adds_its_codes_to_istios_defaults()
    {
        RetryPolicy p = RetryPolicy.From(new HttpRouteRetry([503], 4, TimeSpan.FromMilliseconds(100)));
        Assert.Equal(4, p.Attempts);
        Assert.True(p.Matches(AttemptOutcome.Response(503)));
        Assert.False(p.Matches(AttemptOutcome.Response(500)));
        Assert.True(p.Matches(new AttemptOutcome(AttemptEnd.ConnectFailure)));
        Assert.Equal(TimeSpan.FromMilliseconds(100), p.BaseInterval);
        Assert.Same(RetryPolicy.None, RetryPolicy.From(new HttpRouteRetry([], 0, null)));
    }

    [Fact]
    public void Unknown_conditions_are_named()
    {
        Assert.Null(RetryPolicy.ParseConditions(["5xx", "sometimes"], out string? error));
        Assert.Contains("'sometimes'", error);
    }

    [Fact]
    public void Backoff_is_fully_jittered_exponential_and_capped_at_ten_times_base()
    {
        RetryPolicy p = new() { Attempts = 10, BaseInterval = TimeSpan.FromMilliseconds(25) };
        Random random = new(7);
        for (int n = 1; n <= 10; n++)
        {
            TimeSpan ceiling = TimeSpan.FromMilliseconds(Math.Min(25 * (Math.Pow(2, n) - 1), 250));
            TimeSpan[] waits = [.. Enumerable.Range(0, 200).Select(_ => p.Backoff(n, random))];
            Assert.All(waits, w => Assert.InRange(w, TimeSpan.Zero, ceiling));
            Assert.Contains(waits, w => w > ceiling / 2); // spread over the range, not pinned to its bottom
        }
    }

    [Fact]
    public void Only_requests_whose_body_can_be_sent_again_are_retried()
    {
        Assert.True(RetryPolicy.CanResend(bodyFullyBuffered: true, bodyStarted: true));
        Assert.True(RetryPolicy.CanResend(bodyFullyBuffered: false, bodyStarted: false));
        Assert.False(RetryPolicy.CanResend(bodyFullyBuffered: false, bodyStarted: true));
    }

    [Fact]
    public void Retry_budget_allows_a_percentage_of_active_requests_but_never_fewer_than_the_minimum()
    {
        RetryBudgetGate gate = new(new RetryBudget(Percent: 20, MinRetryConcurrency: 3, BudgetInterval: null));
        for (int i = 0; i < 50; i++)
        {
            gate.RequestStarted();
        }

        int granted = Enumerable.Range(0, 20).Count(_ => gate.TryStartRetry());
        Assert.Equal(10, granted); // 20% of 50

        RetryBudgetGate quiet = new(new RetryBudget(20, 3, null));
        quiet.RequestStarted();
        Assert.Equal(3, Enumerable.Range(0, 10).Count(_ => quiet.TryStartRetry()));
        quiet.RetryEnded();
        Assert.True(quiet.TryStartRetry());
    }

    [Fact]
    public void Circuit_breaker_defaults_are_unlimited_and_set_limits_fail_fast()
    {
        CircuitBreaker open = new(null);
        Assert.Equal(CircuitBreaker.Unlimited, open.Requests.Limit);

        CircuitBreaker cb = new(new ConnectionPoolSettings(
            new TcpSettings { MaxConnections = 2 },
            new HttpSettings { Http2MaxRequests = 3, Http1MaxPendingRequests = 0 }));
        Assert.Equal(2, cb.Connections.Limit);
        Assert.Equal(CircuitBreaker.Unlimited, cb.Pending.Limit); // 0 is proto3's "unset"
        Assert.True(cb.Requests.TryAcquire());
        Assert.True(cb.Requests.TryAcquire());
        Assert.True(cb.Requests.TryAcquire());
        Assert.False(cb.Requests.TryAcquire());
        Assert.Equal(0, cb.Requests.Remaining);
        cb.Requests.Release();
        Assert.Equal(1, cb.Requests.Remaining);
        Assert.True(cb.Requests.TryAcquire());
    }

    [Fact]
    public async Task Circuit_breaker_never_admits_more_than_its_limit_under_contention()
    {
        CircuitBreaker cb = new(new ConnectionPoolSettings(null, new HttpSettings { Http2MaxRequests = 5 }));
        int peak = 0, inside = 0;
        Task[] workers = [.. Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (int i = 0; i < 20_000; i++)
            {
                if (cb.Requests.TryAcquire())
                {
                    int now = Interlocked.Increment(ref inside);
                    int seen;
                    while ((seen = Volatile.Read(ref peak)) < now && Interlocked.CompareExchange(ref peak, now, seen) != seen)
                    {
                    }

                    Interlocked.Decrement(ref inside);
                    cb.Requests.Release();
                }
            }
        }))];
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.InRange(peak, 1, 5);
        Assert.Equal(0, cb.Requests.InUse);
    }
}
