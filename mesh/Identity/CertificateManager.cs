using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Identity;

/// <summary>
/// Issues workload certificates lazily per identity in use, renews them at half-life in the background,
/// and on renewal failure keeps the still-valid certificate and retries with capped exponential backoff.
/// </summary>
public sealed class CertificateManager : IAsyncDisposable
{
    internal static readonly TimeSpan InitialRetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>Istio's ztunnel caps its certificate-fetch backoff at 150 s.</summary>
    internal static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(150);

    private readonly ICertificateIssuer _issuer;
    private readonly TimeSpan _lifetime;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<SpiffeId, Entry> _entries = new();
    // Cancelled at dispose, never disposed: issues still in flight read its token, and a source without a timer holds nothing to free.
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2213", Justification = "cancelled on dispose; in-flight issues still read the token")]
    private readonly CancellationTokenSource _stopping = new();
    private volatile bool _disposed;

    public CertificateManager(ICertificateIssuer issuer, TimeSpan lifetime, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lifetime, TimeSpan.Zero);
        _issuer = issuer;
        _lifetime = lifetime;
        _time = time;
        _logger = logger;
    }

    public ICertificateIssuer Issuer => _issuer;

    /// <summary>The current certificate for <paramref name="id"/>, issuing it on first use (concurrent callers share one issuance).</summary>
    /// <remarks>
    /// Fails with <see cref="InvalidOperationException"/> when there is no valid certificate and issuing one fails.
    /// Cancelling only stops this caller's wait; a shared issuance keeps going for the others.
    /// </remarks>
    public ValueTask<WorkloadCertificate> GetAsync(SpiffeId id, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Entry entry = _entries.GetOrAdd(id, static key => new Entry(key));
        WorkloadCertificate? current = entry.Current;
        // The per-connection path: no lock, no allocation.
        if (current is not null && _time.GetUtcNow() < current.NotAfter)
        {
            return ValueTask.FromResult(current);
        }

        return GetSlowAsync(entry, cancellationToken);
    }

    /// <summary>Certificates currently held (for /config_dump).</summary>
    public IReadOnlyList<WorkloadCertificate> Snapshot()
    {
        var held = new List<WorkloadCertificate>(_entries.Count);
        foreach (KeyValuePair<SpiffeId, Entry> pair in _entries)
        {
            if (pair.Value.Current is { } certificate)
            {
                held.Add(certificate);
            }
        }

        return held;
    }

    /// <summary>
    /// Drops the certificates of identities not in <paramref name="inUse"/> and stops renewing them (issue 8: every
    /// identity ever used was renewed forever). A connection still open with a dropped certificate keeps working;
    /// a new one for that identity issues a fresh certificate. Returns how many were dropped.
    /// </summary>
    public int Retain(IReadOnlySet<SpiffeId> inUse)
    {
        int dropped = 0;
        foreach (KeyValuePair<SpiffeId, Entry> pair in _entries)
        {
            if (inUse.Contains(pair.Key) || !_entries.TryRemove(pair))
            {
                continue;
            }
            lock (pair.Value.Gate)
            {
                pair.Value.Timer?.Dispose();
                pair.Value.Timer = null;
            }
            dropped++;
        }
        return dropped;
    }

    /// <summary>Raised after a renewal attempt fails (for metrics); the old certificate stays in use.</summary>
    public event Action<SpiffeId, Exception>? RenewalFailed;

    public ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return ValueTask.CompletedTask;
        }

        _disposed = true;
        _stopping.Cancel();
        foreach (KeyValuePair<SpiffeId, Entry> pair in _entries)
        {
            lock (pair.Value.Gate)
            {
                pair.Value.Timer?.Dispose();
                pair.Value.Timer = null;
            }
        }

        // Certificates are not disposed: connections still open may be using their contexts.
        return ValueTask.CompletedTask;
    }

    /// <summary>1 s, 2 s, 4 s, ... capped at <see cref="MaxRetryDelay"/>.</summary>
    internal static TimeSpan RetryDelay(int failures)
    {
        int exponent = Math.Clamp(failures - 1, 0, 30);
        double seconds = InitialRetryDelay.TotalSeconds * Math.Pow(2, exponent);
        return seconds >= MaxRetryDelay.TotalSeconds ? MaxRetryDelay : TimeSpan.FromSeconds(seconds);
    }

    /// <summary>Renewal is due at half of the certificate's lifetime, as Istio does.</summary>
    internal static DateTimeOffset RenewalTime(WorkloadCertificate certificate) =>
        certificate.NotBefore + ((certificate.NotAfter - certificate.NotBefore) / 2);

    private async ValueTask<WorkloadCertificate> GetSlowAsync(Entry entry, CancellationToken cancellationToken)
    {
        Task<WorkloadCertificate> issuing = StartOrJoin(entry, foreground: true);
        try
        {
            return await issuing.WaitAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            throw new InvalidOperationException($"No certificate for {entry.Id}: issuing one failed: {ex.Message}", ex);
        }
    }

    private Task<WorkloadCertificate> StartOrJoin(Entry entry, bool foreground)
    {
        TaskCompletionSource<WorkloadCertificate> issuing;
        lock (entry.Gate)
        {
            if (entry.InFlight is { } inFlight)
            {
                return inFlight;
            }

            WorkloadCertificate? current = entry.Current;
            if (foreground && current is not null)
            {
                if (_time.GetUtcNow() < current.NotAfter)
                {
                    // Renewed between the caller's lock-free check and now.
                    return Task.FromResult(current);
                }

                IdentityLog.Expired(_logger, entry.Id, current.NotAfter);
            }

            // Recorded before the issuer runs, so a caller arriving meanwhile joins it even if it completes
            // synchronously; the issuer then runs outside the lock (it may be a remote call, and RenewalFailed
            // handlers should not run under it).
            issuing = new TaskCompletionSource<WorkloadCertificate>(TaskCreationOptions.RunContinuationsAsynchronously);
            entry.InFlight = issuing.Task;
        }

        _ = RunIssueAsync(entry, issuing);
        return issuing.Task;
    }

    private async Task RunIssueAsync(Entry entry, TaskCompletionSource<WorkloadCertificate> issuing)
    {
        try
        {
            issuing.SetResult(await IssueAsync(entry));
        }
        catch (Exception ex)
        {
            issuing.SetException(ex);
        }
    }

    private async Task<WorkloadCertificate> IssueAsync(Entry entry)
    {
        WorkloadCertificate certificate;
        try
        {
            IssuedCertificate issued = await _issuer.IssueAsync(entry.Id, _lifetime, _stopping.Token);
            CheckIssued(entry.Id, issued);
            certificate = WorkloadCertificate.Create(entry.Id, issued);
        }
        catch (Exception ex)
        {
            OnFailed(entry, ex);
            throw;
        }

        DateTimeOffset renewAt = RenewalTime(certificate);
        lock (entry.Gate)
        {
            entry.Current = certificate;
            entry.Failures = 0;
            entry.InFlight = null;
            ScheduleLocked(entry, renewAt - _time.GetUtcNow());
        }

        IdentityLog.Issued(_logger, entry.Id, certificate.NotAfter, renewAt);
        return certificate;
    }

    /// <summary>A remote CA (istiod) is trusted to sign, not to get the identity right; check before serving it.</summary>
    private static void CheckIssued(SpiffeId id, IssuedCertificate issued)
    {
        if (!issued.Leaf.HasPrivateKey)
        {
            throw new InvalidOperationException($"the issued certificate for {id} has no private key attached");
        }

        if (!SpiffeSan.TryRead(issued.Leaf, out SpiffeId actual, out string? error))
        {
            throw new InvalidOperationException($"the issued certificate for {id} is unusable: {error}");
        }

        if (actual != id)
        {
            throw new InvalidOperationException($"the issued certificate is for {actual}, not {id}");
        }
    }

    private void OnFailed(Entry entry, Exception exception)
    {
        WorkloadCertificate? current;
        int attempt;
        TimeSpan delay;
        lock (entry.Gate)
        {
            entry.InFlight = null;
            current = entry.Current;
            if (_disposed)
            {
                return;
            }

            if (current is null)
            {
                // First issuance: nothing to keep; the next GetAsync tries again.
                attempt = 0;
                delay = default;
            }
            else
            {
                attempt = ++entry.Failures;
                delay = RetryDelay(attempt);
                ScheduleLocked(entry, delay);
            }
        }

        if (current is null)
        {
            IdentityLog.IssueFailed(_logger, exception, entry.Id);
            return;
        }

        IdentityLog.RenewalFailed(_logger, exception, entry.Id, attempt, current.NotAfter, delay);
        try
        {
            RenewalFailed?.Invoke(entry.Id, exception);
        }
        catch (Exception handlerError)
        {
            // A metrics handler must not break the renewal loop.
            IdentityLog.RenewalHandlerThrew(_logger, handlerError);
        }
    }

    private void ScheduleLocked(Entry entry, TimeSpan due)
    {
        // A dropped identity (Retain) whose issuance was in flight is not renewed again.
        if (_disposed || !_entries.TryGetValue(entry.Id, out Entry? live) || !ReferenceEquals(live, entry))
        {
            return;
        }

        if (due < TimeSpan.Zero)
        {
            due = TimeSpan.Zero;
        }

        if (entry.Timer is null)
        {
            entry.Timer = _time.CreateTimer(OnTimer, entry, due, Timeout.InfiniteTimeSpan);
        }
        else
        {
            entry.Timer.Change(due, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnTimer(object? state)
    {
        if (!_disposed)
        {
            _ = RenewInBackgroundAsync((Entry)state!);
        }
    }

    private async Task RenewInBackgroundAsync(Entry entry)
    {
        try
        {
            await StartOrJoin(entry, foreground: false);
        }
        catch (Exception)
        {
            // Already logged, reported through RenewalFailed, and a retry is scheduled.
        }
    }

    private sealed class Entry(SpiffeId id)
    {
        public readonly SpiffeId Id = id;
        public readonly Lock Gate = new();
        public volatile WorkloadCertificate? Current;
        public Task<WorkloadCertificate>? InFlight;
        public ITimer? Timer;
        public int Failures;
    }
}
