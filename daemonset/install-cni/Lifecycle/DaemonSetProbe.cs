using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Ambient.InstallCni.Cli;

namespace Ambient.InstallCni.Lifecycle;

/// <summary>What the API server says about this installer's DaemonSet.</summary>
internal enum DaemonSetState
{
    /// <summary>It exists and is not being deleted: this pod stops for a restart, an upgrade or a node drain.</summary>
    Present,
    /// <summary>It has a deletionTimestamp, or is gone: the install is being removed.</summary>
    Deleted,
    /// <summary>401/403: the token or the RBAC that let us read it is gone.</summary>
    Denied,
    /// <summary>No answer that says anything (unreachable, timeout, 5xx, unreadable token).</summary>
    Unknown,
}

internal sealed record DaemonSetProbeResult(DaemonSetState State, string Detail);

/// <summary>
/// One GET of the installer's own DaemonSet, with the pod's service account: the least the installer needs to
/// tell an uninstall from a restart (install.yaml grants exactly <c>get</c> on that one DaemonSet). A plain
/// HttpClient rather than a Kubernetes client library keeps the NativeAOT binary small and reflection-free.
/// </summary>
internal sealed class DaemonSetProbe : IDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);
    private readonly InstallerOptions _options;
    private readonly HttpClient _http;

    public DaemonSetProbe(InstallerOptions options)
    {
        _options = options;
        var handler = new SocketsHttpHandler { ConnectTimeout = RequestTimeout };
        try
        {
            if (File.Exists(options.CaFile))
            {
                // Trust exactly the cluster's CA (and check the host name against it), not the image's trust store.
                var roots = new X509Certificate2Collection();
                roots.ImportFromPemFile(options.CaFile);
                var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
                policy.CustomTrustStore.AddRange(roots);
                handler.SslOptions = new SslClientAuthenticationOptions { CertificateChainPolicy = policy };
            }
            // The client owns the handler from here on.
            _http = new HttpClient(handler, disposeHandler: true) { Timeout = RequestTimeout };
        }
        catch
        {
            handler.Dispose();
            throw;
        }
    }

    public string Url => $"{_options.ApiServer}/apis/apps/v1/namespaces/{Uri.EscapeDataString(_options.PodNamespace ?? "")}/daemonsets/{Uri.EscapeDataString(_options.DaemonSet ?? "")}";

    public async Task<DaemonSetProbeResult> GetAsync(CancellationToken ct)
    {
        string what = $"DaemonSet {_options.PodNamespace}/{_options.DaemonSet}";
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, Url);
            // Read on every call: the kubelet rotates the projected token in place.
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", (await File.ReadAllTextAsync(_options.TokenFile, ct).ConfigureAwait(false)).Trim());
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
            switch (response.StatusCode)
            {
                case HttpStatusCode.OK:
                    using (var doc = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), cancellationToken: ct).ConfigureAwait(false))
                    {
                        bool deleting = doc.RootElement.TryGetProperty("metadata", out var meta)
                            && meta.TryGetProperty("deletionTimestamp", out var ts) && ts.ValueKind == JsonValueKind.String;
                        return deleting
                            ? new(DaemonSetState.Deleted, $"{what} is being deleted (deletionTimestamp {meta.GetProperty("deletionTimestamp").GetString()})")
                            : new(DaemonSetState.Present, $"{what} exists and is not being deleted");
                    }

                case HttpStatusCode.NotFound:
                    return new(DaemonSetState.Deleted, $"{what} no longer exists");
                case HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden:
                    return new(DaemonSetState.Denied, $"the API server refused to show {what} ({(int)response.StatusCode})");
                default:
                    return new(DaemonSetState.Unknown, $"the API server answered {(int)response.StatusCode} for {what}");
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or UnauthorizedAccessException or JsonException
            || (ex is TaskCanceledException && !ct.IsCancellationRequested))
        {
            return new(DaemonSetState.Unknown, $"cannot read {what} from {_options.ApiServer}: {ex.GetBaseException().Message}");
        }
    }

    public void Dispose() => _http.Dispose();
}
