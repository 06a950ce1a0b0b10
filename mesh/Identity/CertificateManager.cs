using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Identity;

/// <summary>
/// Issues workload certificates lazily per identity in use, renews them at half-life in the background,
/// and on renewal failure keeps the still-valid certificate and retries with capped exponential backoff.
/// </summary>
public sealed class CertificateManager : IAsyncDisposable
{
    public CertificateManager(ICertificateIssuer issuer, TimeSpan lifetime, TimeProvider time, ILogger logger) =>
        throw new NotImplementedException();

    public ICertificateIssuer Issuer => throw new NotImplementedException();

    /// <summary>The current certificate for <paramref name="id"/>, issuing it on first use (concurrent callers share one issuance).</summary>
    public ValueTask<WorkloadCertificate> GetAsync(SpiffeId id, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    /// <summary>Certificates currently held (for /config_dump).</summary>
    public IReadOnlyList<WorkloadCertificate> Snapshot() => throw new NotImplementedException();

    /// <summary>Raised after a renewal attempt fails (for metrics); the old certificate stays in use.</summary>
    public event Action<SpiffeId, Exception>? RenewalFailed { add => throw new NotImplementedException(); remove => throw new NotImplementedException(); }

    public ValueTask DisposeAsync() => throw new NotImplementedException();
}
