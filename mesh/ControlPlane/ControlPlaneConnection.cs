using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;

namespace Ambient.Mesh.ControlPlane;

/// <summary>
/// The one way this agent talks to a control plane (istiod's xDS and CA, MCP registries): a gRPC channel over
/// HTTP/2, TLS verified against a root file for https, plaintext for http (tests and local use only), and the call
/// metadata Istio expects on every call: <c>authorization: Bearer &lt;token&gt;</c> (the token file re-read per call,
/// as the kubelet rotates it) and <c>clusterid</c>.
/// </summary>
public sealed class ControlPlaneConnection : IDisposable
{
    private readonly string? _tokenFile;
    private readonly string _clusterId;

    /// <param name="address">The server; https verifies it against <paramref name="rootCertFile"/>.</param>
    /// <param name="rootCertFile">PEM roots that must sign the server's certificate (https only; read per handshake).</param>
    public ControlPlaneConnection(Uri address, string? rootCertFile, string? tokenFile, string clusterId)
    {
        Address = address;
        _tokenFile = tokenFile;
        _clusterId = clusterId;
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        if (address.Scheme == Uri.UriSchemeHttps)
        {
            string roots = rootCertFile ?? throw new ArgumentException("an https control plane needs a root certificate file", nameof(rootCertFile));
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => Verify(certificate, errors, roots),
            };
        }
        Channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 64 * 1024 * 1024,
        });
    }

    public Uri Address { get; }

    public GrpcChannel Channel { get; }

    /// <summary>Why the last TLS handshake was refused (for the error the caller reports), or null.</summary>
    public string? LastTlsError { get; private set; }

    /// <summary>
    /// Why a call failed, for logs and /config_dump: the reason a TLS handshake was refused when that is what happened
    /// (gRPC reports it as Internal or Unavailable with a generic message), else the status code and detail.
    /// </summary>
    public string Describe(RpcException rpc)
    {
        for (Exception? e = rpc.Status.DebugException; e is not null; e = e.InnerException)
        {
            if (e is System.Security.Authentication.AuthenticationException && LastTlsError is { } tls)
            {
                return tls;
            }
        }
        return rpc.StatusCode == StatusCode.Unavailable && LastTlsError is { } last ? last : $"{rpc.StatusCode}: {rpc.Status.Detail}";
    }

    /// <summary>The metadata for one call. Throws <see cref="InvalidOperationException"/> naming the token file when it cannot be read.</summary>
    public Metadata Headers(Metadata? extra = null)
    {
        var headers = new Metadata { { "clusterid", _clusterId } };
        if (_tokenFile is not null)
        {
            string token;
            try
            {
                token = File.ReadAllText(_tokenFile).Trim();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"cannot read the control plane token file '{_tokenFile}': {ex.Message}", ex);
            }
            if (token.Length > 0)
            {
                headers.Add("authorization", "Bearer " + token);
            }
        }
        if (extra is not null)
        {
            foreach (Metadata.Entry e in extra)
            {
                headers.Add(e);
            }
        }
        return headers;
    }

    /// <summary>The server's chain must end at one of the roots in the file, and its name must match the address.</summary>
    private bool Verify(X509Certificate? certificate, SslPolicyErrors errors, string rootFile)
    {
        if (certificate is null)
        {
            LastTlsError = "the control plane sent no certificate";
            return false;
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            LastTlsError = $"the control plane's certificate does not name {Address.Host}";
            return false;
        }
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(rootFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            LastTlsError = $"cannot read the control plane root certificate '{rootFile}': {ex.Message}";
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        bool ok = chain.Build(leaf);
        LastTlsError = ok ? null : $"the control plane's certificate does not chain to a root in '{rootFile}': "
            + string.Join(", ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()));
        return ok;
    }

    /// <summary>
    /// Runs one streaming call after another until <paramref name="ct"/> is cancelled: <paramref name="stream"/> opens a
    /// call and returns only when it fails (calling its <c>answered</c> action on each response it handled), then
    /// <paramref name="failed"/> hears why (the TLS reason when that is what happened) and the next attempt waits a
    /// jittered <paramref name="backoff"/>, reset to its first step once the server had answered.
    /// </summary>
    public async Task RunStreamAsync(Backoff backoff, Func<Action, CancellationToken, Task> stream, Action<string> failed, Action? disconnected, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(backoff);
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(failed);
        int failures = 0;
        while (!ct.IsCancellationRequested)
        {
            bool answered = false;
            try
            {
                await stream(() => answered = true, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                failed(ex is RpcException rpc ? Describe(rpc) : ex.Message);
            }
            disconnected?.Invoke();
            failures = answered ? 1 : failures + 1;
            try
            {
                await Task.Delay(backoff.Delay(failures), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public void Dispose() => Channel.Dispose();
}
