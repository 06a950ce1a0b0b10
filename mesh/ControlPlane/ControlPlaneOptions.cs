using System.Collections.Immutable;

namespace Ambient.Mesh.ControlPlane;

/// <summary>
/// Where the control plane is and who this agent is to it: Istio's ztunnel environment variables (so Istio's own
/// ztunnel DaemonSet spec runs this agent unchanged), overridden by the equivalent command-line flags. Restart-only.
/// </summary>
/// <remarks>
/// <para>An address without a scheme ("istiod.istio-system.svc:15012", as Istio's chart writes it) means https.
/// <c>https://</c> verifies the server's certificate against the root file (<see cref="XdsRootCert"/>,
/// <see cref="CaRootCert"/>); <c>http://</c> is plaintext, for tests and local use only: the bearer token then
/// crosses the network in the clear.</para>
/// </remarks>
public sealed record ControlPlaneOptions
{
    /// <summary>Where Istio mounts the projected service-account token (audience istio-ca).</summary>
    public const string DefaultTokenFile = "/var/run/secrets/tokens/istio-token";

    /// <summary>Where Istio mounts istiod's root certificate.</summary>
    public const string DefaultRootCert = "/var/run/secrets/istio/root-cert.pem";

    /// <summary>Istio's default cluster id.</summary>
    public const string DefaultClusterId = "Kubernetes";

    /// <summary>xDS server (istiod); null = no xDS source.</summary>
    public Uri? XdsAddress { get; init; }

    /// <summary>Istio CA; null = the built-in CA (unless <see cref="XdsAddress"/> is set: Istio defaults it to that).</summary>
    public Uri? CaAddress { get; init; }

    public string XdsRootCert { get; init; } = DefaultRootCert;

    public string CaRootCert { get; init; } = DefaultRootCert;

    /// <summary>Bearer token file, re-read for every call (the kubelet rotates it); null = send no token.</summary>
    public string? TokenFile { get; init; }

    public string ClusterId { get; init; } = DefaultClusterId;

    public string PodName { get; init; } = "";

    public string PodNamespace { get; init; } = "";

    public string NodeName { get; init; } = "";

    public string InstanceIp { get; init; } = "";

    public string ServiceAccount { get; init; } = "";

    /// <summary>TRUST_DOMAIN when set: overrides the config file's trustDomain.</summary>
    public string? TrustDomain { get; init; }

    /// <summary>
    /// XDS_ON_DEMAND: addresses are not pushed wholesale; the agent subscribes to one the first time a connection needs
    /// it (see README, "Under istiod"). Authorization policies stay a wildcard subscription, as in Istio's ztunnel.
    /// </summary>
    public bool OnDemand { get; init; }

    /// <summary>How long a connection waits for the control plane to answer an on-demand address (then it proceeds with what the store holds).</summary>
    public TimeSpan OnDemandTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Every <c>ISTIO_META_*</c> variable without its prefix: sent in the node metadata.</summary>
    public ImmutableSortedDictionary<string, string> IstioMeta { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    /// <summary>
    /// Reads Istio's ztunnel variables: XDS_ADDRESS, CA_ADDRESS (defaults to XDS_ADDRESS, as in Istio), XDS_ROOT_CA,
    /// CA_ROOT_CA, ISTIO_META_CLUSTER_ID, POD_NAME, POD_NAMESPACE, NODE_NAME, INSTANCE_IP, SERVICE_ACCOUNT, TRUST_DOMAIN,
    /// AUTH_TOKEN (the token file), XDS_ON_DEMAND and every ISTIO_META_*. Throws <see cref="FormatException"/> naming
    /// the variable when an address is malformed.
    /// </summary>
    public static ControlPlaneOptions FromEnvironment(IReadOnlyDictionary<string, string> env)
    {
        string? Get(string name) => env.TryGetValue(name, out string? v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;
        var meta = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach ((string key, string value) in env)
        {
            if (key.StartsWith("ISTIO_META_", StringComparison.Ordinal) && key.Length > "ISTIO_META_".Length)
            {
                meta[key["ISTIO_META_".Length..]] = value;
            }
        }
        Uri? xds = Get("XDS_ADDRESS") is { } x ? ParseAddress(x, "XDS_ADDRESS") : null;
        Uri? ca = Get("CA_ADDRESS") is { } c ? ParseAddress(c, "CA_ADDRESS") : xds;
        string xdsRoot = Get("XDS_ROOT_CA") ?? DefaultRootCert;
        return new ControlPlaneOptions
        {
            XdsAddress = xds,
            CaAddress = ca,
            XdsRootCert = xdsRoot,
            CaRootCert = Get("CA_ROOT_CA") ?? xdsRoot,
            TokenFile = Get("AUTH_TOKEN") ?? (xds is not null || ca is not null ? DefaultTokenFile : null),
            ClusterId = Get("ISTIO_META_CLUSTER_ID") ?? Get("CLUSTER_ID") ?? DefaultClusterId,
            PodName = Get("POD_NAME") ?? "",
            PodNamespace = Get("POD_NAMESPACE") ?? "",
            NodeName = Get("NODE_NAME") ?? "",
            InstanceIp = Get("INSTANCE_IP") ?? "",
            ServiceAccount = Get("SERVICE_ACCOUNT") ?? "",
            TrustDomain = Get("TRUST_DOMAIN"),
            OnDemand = Get("XDS_ON_DEMAND") is { } od && (od == "1" || od.Equals("true", StringComparison.OrdinalIgnoreCase) || od.Equals("on", StringComparison.OrdinalIgnoreCase)),
            IstioMeta = meta.ToImmutable(),
        };
    }

    /// <summary>The process environment as <see cref="FromEnvironment(IReadOnlyDictionary{string, string})"/> takes it.</summary>
    public static IReadOnlyDictionary<string, string> ProcessEnvironment()
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            env[(string)e.Key] = e.Value as string ?? "";
        }
        return env;
    }

    /// <summary>"host:port" (https), "https://host:port" or "http://host:port" (plaintext; tests and local use only).</summary>
    public static Uri ParseAddress(string value, string what)
    {
        string text = value.Contains("://", StringComparison.Ordinal) ? value : "https://" + value;
        if (!Uri.TryCreate(text, UriKind.Absolute, out Uri? uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp)
            || string.IsNullOrEmpty(uri.Host) || (uri.AbsolutePath != "/" && uri.AbsolutePath.Length > 0))
        {
            throw new FormatException($"{what}: '{value}' is not a control plane address (host:port, https://host:port, or http://host:port for plaintext)");
        }
        return uri;
    }

    /// <summary>Istio's ztunnel node id: <c>ztunnel~IP~POD.NS~NS.svc.cluster.local</c>.</summary>
    public string NodeId => $"ztunnel~{InstanceIp}~{PodName}.{PodNamespace}~{PodNamespace}.svc.cluster.local";
}
