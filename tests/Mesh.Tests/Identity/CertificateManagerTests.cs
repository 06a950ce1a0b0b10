using Ambient.Mesh.Identity;
using Microsoft.Extensions.Logging.Abstractions;
using System.Security.Cryptography.X509Certificates;

namespace Ambient.Mesh.Tests.Identity;

public sealed class CertificateManagerTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(24);
    private static readonly SpiffeId Alice = new("cluster.local", "default", "alice");
    private static readonly SpiffeId Bob = new("cluster.local", "default", "bob");

    private readonly TempDir _dir = new();
    private readonly CertificateAuthority _ca;
    // Whole seconds: certificate times have second precision, so renewal instants come out exact.
    private readonly ManualTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));

    public CertificateManagerTests()
    {
        _ca = CertificateAuthority.LoadOrCreate(null, null, _dir.Path, "cluster.local");
    }

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Issues_lazily_and_concurrent_callers_share_one_issuance()
    {
        var issuer = new FakeIssuer(_ca, _time) { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using var manager = new CertificateManager(issuer, Lifetime, _time, NullLogger.Instance);
        Assert.Empty(manager.Snapshot());
        Assert.Equal(0, issuer.Calls);

        var waiters = new List<Task<WorkloadCertificate>>();
        for (int i = 0; i < 32; i++)
        {
            waiters.Add(Task.Run(() => manager.GetAsync(Alice, CancellationToken.None).AsTask()));
        }

        await issuer.Started.Task.WaitAsync(Timeout);
        await Task.Delay(50);
        issuer.Gate.SetResult();
        WorkloadCertificate[] results = await Task.WhenAll(waiters).WaitAsync(Timeout);

        Assert.Equal(1, issuer.Calls);
        Assert.All(results, r => Assert.Same(results[0], r));
        WorkloadCertificate certificate = results[0];
        Assert.Equal(Alice, certificate.Id);
        Assert.True(certificate.Leaf.HasPrivateKey);
        Assert.NotNull(certificate.Context);
        Assert.Same(certificate, Assert.Single(manager.Snapshot()));

        // Served from memory afterwards; another identity gets its own certificate.
        Assert.Same(certificate, await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout));
        WorkloadCertificate bob = await manager.GetAsync(Bob, CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.Equal(Bob, bob.Id);
        Assert.Equal(2, issuer.Calls);
        Assert.Equal(2, manager.Snapshot().Count);
    }

    [Fact]
    public async Task A_cancelled_caller_does_not_cancel_the_shared_issuance()
    {
        var issuer = new FakeIssuer(_ca, _time) { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using var manager = new CertificateManager(issuer, Lifetime, _time, NullLogger.Instance);
        using var cancel = new CancellationTokenSource();
        Task<WorkloadCertificate> cancelled = manager.GetAsync(Alice, cancel.Token).AsTask();
        Task<WorkloadCertificate> patient = manager.GetAsync(Alice, CancellationToken.None).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Timeout));
        issuer.Gate.SetResult();
        Assert.Equal(Alice, (await patient.WaitAsync(Timeout)).Id);
        Assert.Equal(1, issuer.Calls);
    }

    [Fact]
    public async Task Identities_no_longer_in_use_are_dropped_and_not_renewed()
    {
        var issuer = new FakeIssuer(_ca, _time);
        await using var manager = new CertificateManager(issuer, Lifetime, _time, NullLogger.Instance);
        await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout);
        await manager.GetAsync(Bob, CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.Equal(2, issuer.Calls);

        Assert.Equal(1, manager.Retain(new HashSet<SpiffeId> { Alice }));
        Assert.Equal(Alice, Assert.Single(manager.Snapshot()).Id);

        // Past half-life only Alice is renewed: Bob's renewal timer is gone with his certificate.
        _time.Advance(TimeSpan.FromHours(12));
        Assert.Equal(3, issuer.Calls);
        Assert.Equal(Alice, Assert.Single(manager.Snapshot()).Id);

        // Bob back in use: a fresh certificate on demand.
        await manager.GetAsync(Bob, CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.Equal(4, issuer.Calls);
    }

    [Fact]
    public async Task Renews_at_half_life()
    {
        var issuer = new FakeIssuer(_ca, _time);
        await using var manager = new CertificateManager(issuer, Lifetime, _time, NullLogger.Instance);
        WorkloadCertificate first = await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout);
        DateTimeOffset renewAt = first.NotBefore + ((first.NotAfter - first.NotBefore) / 2);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromHours(12) - TimeSpan.FromSeconds(30), renewAt);

        _time.Advance(renewAt - _time.GetUtcNow() - TimeSpan.FromSeconds(1));
        Assert.Equal(1, issuer.Calls);
        Assert.Same(first, await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, issuer.Calls);
        Assert.Equal(renewAt, issuer.CallTimes[1]);
        WorkloadCertificate second = await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.NotSame(first, second);
        Assert.Equal(renewAt + Lifetime, second.NotAfter);
        Assert.Same(second, Assert.Single(manager.Snapshot()));

        // And the renewed certificate is itself renewed at its half-life.
        _time.Advance(TimeSpan.FromHours(12));
        Assert.Equal(3, issuer.Calls);
    }

    [Fact]
    public async Task Renewal_failure_keeps_the_old_certificate_and_backs_off_up_to_150_seconds()
    {
        var issuer = new FakeIssuer(_ca, _time);
        await using var manager = new CertificateManager(issuer, Lifetime, _time, NullLogger.Instance);
        var failures = new List<(SpiffeId Id, Exception Error)>();
        manager.RenewalFailed += (id, error) => failures.Add((id, error));
        WorkloadCertificate first = await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout);

        issuer.Failing = true;
        _time.Advance(CertificateManager.RenewalTime(first) - _time.GetUtcNow());
        Assert.Equal(2, issuer.Calls);
        (SpiffeId failedId, Exception failedError) = Assert.Single(failures);
        Assert.Equal(Alice, failedId);
        Assert.Equal("CA unavailable", failedError.Message);
        Assert.Same(first, await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout));

        _time.Advance(TimeSpan.FromMinutes(20));
        var gaps = new List<double>();
        for (int i = 2; i < issuer.CallTimes.Count; i++)
        {
            gaps.Add((issuer.CallTimes[i] - issuer.CallTimes[i - 1]).TotalSeconds);
        }

        Assert.Equal([1, 2, 4, 8, 16, 32, 64, 128, 150, 150], gaps.Take(10));
        Assert.All(gaps.Skip(8), gap => Assert.Equal(150, gap));
        Assert.Equal(issuer.Calls - 1, failures.Count);
        Assert.Same(first, await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout));

        // Recovery resets the backoff: the next renewal is a half-life away again.
        issuer.Failing = false;
        _time.Advance(TimeSpan.FromSeconds(150));
        WorkloadCertificate renewed = await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.NotSame(first, renewed);
        int calls = issuer.Calls;
        _time.Advance(TimeSpan.FromHours(11));
        Assert.Equal(calls, issuer.Calls);
    }

    [Fact]
    public async Task An_expired_certificate_is_reissued_on_use_or_fails_clearly()
    {
        var issuer = new FakeIssuer(_ca, _time);
        await using var manager = new CertificateManager(issuer, Lifetime, _time, NullLogger.Instance);
        WorkloadCertificate first = await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout);

        issuer.Failing = true;
        _time.Advance(TimeSpan.FromHours(25));
        Assert.True(_time.GetUtcNow() > first.NotAfter);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout));
        Assert.Contains(Alice.ToString(), error.Message, StringComparison.Ordinal);
        Assert.Contains("CA unavailable", error.Message, StringComparison.Ordinal);

        issuer.Failing = false;
        WorkloadCertificate fresh = await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.True(fresh.NotAfter > _time.GetUtcNow());
    }

    [Fact]
    public async Task A_failed_first_issuance_is_retried_by_the_next_caller()
    {
        var issuer = new FakeIssuer(_ca, _time) { Failing = true };
        await using var manager = new CertificateManager(issuer, Lifetime, _time, NullLogger.Instance);
        int renewalFailures = 0;
        manager.RenewalFailed += (_, _) => renewalFailures++;
        await Assert.ThrowsAsync<InvalidOperationException>(() => manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout));
        Assert.Equal(0, renewalFailures);
        Assert.Empty(manager.Snapshot());

        issuer.Failing = false;
        Assert.Equal(Alice, (await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout)).Id);
    }

    [Fact]
    public async Task A_certificate_for_the_wrong_identity_is_refused()
    {
        var issuer = new FakeIssuer(_ca, _time) { Substitute = Bob };
        await using var manager = new CertificateManager(issuer, Lifetime, _time, NullLogger.Instance);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout));
        Assert.Contains("not spiffe://cluster.local/ns/default/sa/alice", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dispose_stops_renewal()
    {
        var issuer = new FakeIssuer(_ca, _time);
        var manager = new CertificateManager(issuer, Lifetime, _time, NullLogger.Instance);
        await manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout);
        Assert.Equal(1, _time.ActiveTimers);

        await manager.DisposeAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal(0, _time.ActiveTimers);
        _time.Advance(TimeSpan.FromDays(2));
        Assert.Equal(1, issuer.Calls);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => manager.GetAsync(Alice, CancellationToken.None).AsTask().WaitAsync(Timeout));
    }

    [Fact]
    public void Retry_delay_doubles_from_one_second_and_caps_at_150()
    {
        Assert.Equal(TimeSpan.FromSeconds(1), CertificateManager.RetryDelay(1));
        Assert.Equal(TimeSpan.FromSeconds(64), CertificateManager.RetryDelay(7));
        Assert.Equal(TimeSpan.FromSeconds(150), CertificateManager.RetryDelay(9));
        Assert.Equal(TimeSpan.FromSeconds(150), CertificateManager.RetryDelay(int.MaxValue));
    }

    /// <summary>Issues with the real CA but on the fake clock; can be held, made to fail, or to lie about the id.</summary>
    private sealed class FakeIssuer(CertificateAuthority ca, TimeProvider time) : ICertificateIssuer
    {
        private int _calls;

        public TaskCompletionSource? Gate { get; init; }
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public volatile bool Failing;
        public SpiffeId? Substitute { get; init; }
        public List<DateTimeOffset> CallTimes { get; } = [];
        public int Calls => Volatile.Read(ref _calls);

        public X509Certificate2Collection TrustBundle => ca.TrustBundle;

        public async ValueTask<IssuedCertificate> IssueAsync(SpiffeId id, TimeSpan lifetime, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            DateTimeOffset now = time.GetUtcNow();
            lock (CallTimes)
            {
                CallTimes.Add(now);
            }

            Started.TrySetResult();
            if (Gate is not null)
            {
                await Gate.Task.WaitAsync(cancellationToken);
            }

            if (Failing)
            {
                throw new InvalidOperationException("CA unavailable");
            }

            return ca.Issue(Substitute ?? id, now - CertificateAuthority.Backdate, now + lifetime);
        }
    }
}
