using Ambient.Mesh.Governance;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Model.L7;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Ambient.Mesh.Tests.Governance;

public sealed class RateLimitTests
{
    private static readonly SpiffeId Alice = new("cluster.local", "shop", "alice");
    private static readonly SpiffeId Bob = new("cluster.local", "shop", "bob");
    private static readonly SpiffeId Carol = new("cluster.local", "ops", "carol");

    private static HttpLocalRateLimitPolicy Policy(uint? total = null, uint? identity = null, params RateLimitOverride[] overrides) => new()
    {
        Namespace = "shop",
        Name = "web-limit",
        TargetRef = new RateLimitTarget("", "Service", "web"),
        TotalRequestsPerSecond = total,
        IdentityRequestsPerSecond = identity,
        Overrides = [.. overrides],
    };

    private static int Admitted(LocalRateLimiter limiter, SpiffeId? client, int tries)
    {
        int ok = 0;
        for (int i = 0; i < tries; i++)
        {
            if (limiter.TryAcquire(client) == RateLimitVerdict.Allowed)
            {
                ok++;
            }
        }

        return ok;
    }

    [Fact]
    public void A_bucket_admits_its_burst_then_refills_at_its_rate()
    {
        FakeTimeProvider clock = new();
        TokenBucket bucket = new(10, 10, clock);
        int first = Enumerable.Range(0, 20).Count(_ => bucket.TryTake());
        Assert.Equal(10, first);

        clock.Advance(TimeSpan.FromMilliseconds(250));
        Assert.Equal(2, Enumerable.Range(0, 5).Count(_ => bucket.TryTake())); // 2.5 tokens: two whole ones

        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(10, Enumerable.Range(0, 20).Count(_ => bucket.TryTake())); // never above capacity
    }

    [Fact]
    public void Total_limit_is_shared_by_every_client()
    {
        FakeTimeProvider clock = new();
        LocalRateLimiter limiter = new(Policy(total: 5), clock);
        Assert.Equal(3, Admitted(limiter, Alice, 3));
        Assert.Equal(2, Admitted(limiter, Bob, 10));
        Assert.Equal(RateLimitVerdict.Total, limiter.TryAcquire(null));

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(5, Admitted(limiter, Carol, 10));
    }

    [Fact]
    public void Identity_limit_gives_each_client_its_own_bucket()
    {
        FakeTimeProvider clock = new();
        LocalRateLimiter limiter = new(Policy(identity: 2), clock);
        Assert.Equal(2, Admitted(limiter, Alice, 5));
        Assert.Equal(RateLimitVerdict.Client, limiter.TryAcquire(Alice));
        Assert.Equal(2, Admitted(limiter, Bob, 5)); // Alice's exhaustion does not touch Bob
        Assert.Equal(2, limiter.TrackedClients);
    }

    [Fact]
    public void Clients_without_identity_share_one_bucket()
    {
        LocalRateLimiter limiter = new(Policy(identity: 3), new FakeTimeProvider());
        Assert.Equal(3, Admitted(limiter, null, 2) + Admitted(limiter, null, 2));
    }

    [Fact]
    public void An_override_replaces_the_identity_limit_and_is_shared_by_the_accounts_it_names()
    {
        FakeTimeProvider clock = new();
        RateLimitOverride vip = new(6, [new RateLimitClientRef("alice", null), new RateLimitClientRef("carol", "ops")]);
        LocalRateLimiter limiter = new(Policy(identity: 1, overrides: vip), clock);

        Assert.Equal(4, Admitted(limiter, Alice, 4));
        Assert.Equal(2, Admitted(limiter, Carol, 4)); // same override bucket: 6 in all
        Assert.Equal(1, Admitted(limiter, Bob, 4));   // not named: the identity limit

        // The override's namespace defaults to the policy's: carol in "shop" is not ops/carol.
        Assert.Equal(1, Admitted(limiter, new SpiffeId("cluster.local", "shop", "carol"), 3));
    }

    [Fact]
    public void A_request_refused_by_the_total_does_not_spend_the_clients_token()
    {
        FakeTimeProvider clock = new();
        LocalRateLimiter limiter = new(Policy(total: 10, identity: 1), clock);
        for (int i = 0; i < 10; i++)
        {
            Assert.Equal(RateLimitVerdict.Allowed, limiter.TryAcquire(new SpiffeId("cluster.local", "shop", $"c{i}")));
        }

        Assert.Equal(RateLimitVerdict.Total, limiter.TryAcquire(Alice));

        // 100 ms: the total (10/s) has one token again; Alice's own bucket (1/s) would hold only 0.1 had the
        // refused request spent her token.
        clock.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(RateLimitVerdict.Allowed, limiter.TryAcquire(Alice));
    }

    [Fact]
    public void Per_client_buckets_stay_bounded_and_newcomers_past_the_bound_share_one()
    {
        FakeTimeProvider clock = new();
        LocalRateLimiter limiter = new(Policy(identity: 1), clock, maxClients: 3);
        SpiffeId Client(int i) => new("cluster.local", "shop", $"c{i}");
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(RateLimitVerdict.Allowed, limiter.TryAcquire(Client(i)));
        }

        // All three buckets are empty (in use): two newcomers share the overflow bucket.
        Assert.Equal(RateLimitVerdict.Allowed, limiter.TryAcquire(Client(10)));
        Assert.Equal(RateLimitVerdict.Client, limiter.TryAcquire(Client(11)));
        Assert.Equal(3, limiter.TrackedClients);

        // Once they refill, full buckets are dropped to make room.
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(RateLimitVerdict.Allowed, limiter.TryAcquire(Client(12)));
        Assert.True(limiter.TrackedClients <= 3);
    }

    [Fact]
    public void No_limits_admit_everything()
    {
        LocalRateLimiter limiter = new(Policy(), new FakeTimeProvider());
        Assert.Equal(1000, Admitted(limiter, Alice, 1000));
    }

    [Fact]
    public void A_zero_rate_is_refused_rather_than_read_as_no_limit()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LocalRateLimiter(Policy(total: 0), new FakeTimeProvider()));
    }
}
