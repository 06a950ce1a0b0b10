using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using k8s;

namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>
/// An authenticated HTTP connection to one API server: the server URL, TLS (the kubeconfig's or the service
/// account's CA, client certificates) and credentials (bearer token, refreshed service-account token, exec plugin)
/// as the kubeconfig or the pod's service account define them.
/// </summary>
/// <remarks>
/// <para>Library choice: <c>KubernetesClient.Aot</c> 21, for its kubeconfig/in-cluster loading, its configured
/// <see cref="HttpClient"/> (a <see cref="SocketsHttpHandler"/> with the CA check, client certificate and HTTP/2
/// keep-alive pings) and its <see cref="k8s.Authentication.ServiceClientCredentials"/>. It loads kubeconfig YAML
/// with generated code, so the agent publishes with NativeAOT without trim warnings; the classic
/// <c>KubernetesClient</c> package reads kubeconfig and models by reflection and warns at AOT publish.</para>
/// <para>The lists and watches themselves are plain GETs here, read as raw JSON: the Aot package has no watch
/// support, and the typed clients of either package deserialise into models (dropping fields the translator
/// must see, and CRDs come back as untyped <c>object</c>), pass a watch's 410 <c>Status</c> to a callback instead
/// of the caller, and cannot resume a generic watch from a resourceVersion (REFERENCE.md "Kubernetes API").</para>
/// </remarks>
internal sealed class KubeConnection : IDisposable
{
    private readonly k8s.Kubernetes _client;
    private readonly string? _tlsServerName;
    private readonly bool _http2;
    private readonly bool _sendCredentials;

    private KubeConnection(KubernetesClientConfiguration config, string origin)
    {
        _client = new k8s.Kubernetes(config);
        _tlsServerName = string.IsNullOrWhiteSpace(config.TlsServerName) ? null : config.TlsServerName;
        _http2 = !config.DisableHttp2;
        Origin = origin;
        Server = _client.BaseUri;
        // A bearer token over plain http is readable by anyone on the path; client-go does not send it either.
        bool https = Server.Scheme == Uri.UriSchemeHttps;
        _sendCredentials = https && _client.Credentials is not null;
        CredentialsWithheld = !https && _client.Credentials is not null;
    }

    /// <summary>Where the configuration came from ("kubeconfig /root/.kube/config", "in-cluster service account").</summary>
    public string Origin { get; }

    public Uri Server { get; }

    /// <summary>The configuration has credentials, but the server is plain http, so they are not sent.</summary>
    public bool CredentialsWithheld { get; }

    /// <summary>
    /// Loads the configuration as <see cref="KubernetesApiOptions.KubeconfigPath"/> says.
    /// </summary>
    /// <exception cref="InvalidOperationException">No configuration found, or it cannot be read; the message says which and why.</exception>
    public static async Task<KubeConnection> OpenAsync(KubernetesApiOptions options, Func<string, string?> environment, CancellationToken cancellationToken)
    {
        (KubernetesClientConfiguration config, string origin) = await LoadAsync(options, environment, cancellationToken).ConfigureAwait(false);
        try
        {
            return new KubeConnection(config, origin);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"{origin}: {e.Message}", e);
        }
    }

    internal static async Task<(KubernetesClientConfiguration Config, string Origin)> LoadAsync(
        KubernetesApiOptions options, Func<string, string?> environment, CancellationToken cancellationToken)
    {
        string? path = options.KubeconfigPath;
        string origin;
        if (!string.IsNullOrEmpty(path))
        {
            origin = $"kubeconfig {path}";
        }
        else if (environment("KUBECONFIG") is { Length: > 0 } list)
        {
            string[] files = list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (files.Length > 1)
            {
                if (options.Context is not null)
                {
                    throw new InvalidOperationException(
                        $"KUBECONFIG lists {files.Length} files; choosing context '{options.Context}' needs one file (pass --kubeconfig)");
                }
                // The library merges a list as kubectl does (the first file to define a name wins).
                return (Wrap($"KUBECONFIG {list}", KubernetesClientConfiguration.BuildDefaultConfig), $"KUBECONFIG {list}");
            }
            path = files.Length == 1 ? files[0] : null;
            origin = $"kubeconfig {path} (KUBECONFIG)";
        }
        else if (KubernetesClientConfiguration.IsInCluster())
        {
            return (Wrap("in-cluster service account", KubernetesClientConfiguration.InClusterConfig), "in-cluster service account");
        }
        else if (File.Exists(KubernetesClientConfiguration.KubeConfigDefaultLocation))
        {
            path = KubernetesClientConfiguration.KubeConfigDefaultLocation;
            origin = $"kubeconfig {path}";
        }
        else
        {
            throw new InvalidOperationException(
                "no Kubernetes API server configured: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a service account");
        }

        if (path is null || !File.Exists(path))
        {
            throw new InvalidOperationException($"{origin}: file not found");
        }
        try
        {
            KubernetesClientConfiguration config = await KubernetesClientConfiguration
                .BuildConfigFromConfigFileAsync(new FileInfo(path), options.Context).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            return (config, origin);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"{origin}: {e.Message}", e);
        }
    }

    private static KubernetesClientConfiguration Wrap(string origin, Func<KubernetesClientConfiguration> load)
    {
        try
        {
            return load();
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"{origin}: {e.Message}", e);
        }
    }

    /// <summary>
    /// GETs <paramref name="pathAndQuery"/> (relative to the server URL) and returns the response once its headers
    /// arrived. The caller disposes it.
    /// </summary>
    /// <exception cref="KubeApiException">The server answered with an error status (its Status object's code, reason and message).</exception>
    /// <exception cref="HttpRequestException">The server could not be reached.</exception>
    public async Task<HttpResponseMessage> GetAsync(string pathAndQuery, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(Server, pathAndQuery));
        if (_http2)
        {
            // Over TLS this negotiates HTTP/2 by ALPN, and all watches share one connection; plain http stays 1.1.
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        }
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (_tlsServerName is not null)
        {
            request.Headers.Host = _tlsServerName;
        }
        if (_sendCredentials)
        {
            await _client.Credentials.ProcessHttpRequestAsync(request, cancellationToken).ConfigureAwait(false);
        }

        HttpResponseMessage response = await _client.HttpClient
            .SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            string body = "";
            try
            {
                body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                // The status code alone still says what happened.
            }
            throw StatusError((int)response.StatusCode, body);
        }
    }

    /// <summary>An exception for an error status, with the Status object's reason and message when the body is one.</summary>
    internal static KubeApiException StatusError(int httpCode, string body)
    {
        string reason = "";
        string message = "";
        int code = httpCode;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            JsonElement root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                reason = root.TryGetProperty("reason", out JsonElement r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : "";
                message = root.TryGetProperty("message", out JsonElement m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "";
                if (root.TryGetProperty("code", out JsonElement c) && c.TryGetInt32(out int statusCode) && statusCode > 0)
                {
                    code = statusCode;
                }
            }
        }
        catch (JsonException)
        {
            message = body.Length > 200 ? body[..200] : body;
        }
        string text = $"HTTP {httpCode}" + (reason.Length > 0 ? $" {reason}" : "") + (message.Length > 0 ? $": {message}" : "");
        return new KubeApiException(code, reason, text);
    }

    public void Dispose() => _client.Dispose();
}
