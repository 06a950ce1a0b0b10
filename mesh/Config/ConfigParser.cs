using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Config;

/// <summary>
/// Turns one YAML document into a <see cref="MeshConfig"/>: the top level and the project keys here, the Istio
/// sections in the partial files by facet. Errors go to the reader; parsing always continues so the user
/// sees every problem at once.
/// </summary>
internal sealed partial class ConfigParser(YamlConfigReader r, string? baseDir)
{
    // Top-level keys. Istio's LocalConfig is deny_unknown_fields, so an unknown top-level key is never
    // something a newer Istio added: it is a typo ("workload:", "policy:") that would silently drop a whole
    // section, and it is an error.
    private static readonly string[] TopLevelKeys =
    [
        "workloads", "services", "policies",
        "trustDomain", "ca", "mode", "listeners", "admin", "metrics", "readiness", "accessLog",
        "certificateLifetime", "drainTimeout", "hboneIdleTimeout", "stateDir", "inpod", "manifests",
        "mcp",
    ];

    private static readonly string[] McpKeys = ["name", "address", "precedence", "version", "staleAfter", "rootCert", "tokenFile"];

    private static readonly string[] InPodKeys = ["cniSocket", "enrollmentFile", "firewall", "inboundCapture", "namespaces", "all"];
    private static readonly (string, CaptureFirewall)[] Firewalls = [("iptables", CaptureFirewall.Iptables), ("nftables", CaptureFirewall.Nftables)];
    private static readonly (string, InboundCapture)[] InboundCaptures = [("tproxy", InboundCapture.Tproxy), ("redirect", InboundCapture.Redirect)];

    private static readonly string[] CaKeys = ["certFile", "keyFile"];
    private static readonly string[] ListenerKeys = ["outbound", "inbound", "hbone", "socks5"];

    private static readonly (string, AgentMode)[] Modes = [("shared", AgentMode.Shared), ("inpod", AgentMode.InPod), ("in-pod", AgentMode.InPod)];
    private static readonly (string, AccessLogFormat)[] AccessLogFormats =
        [("text", AccessLogFormat.Text), ("json", AccessLogFormat.Json), ("off", AccessLogFormat.Off)];

    public MeshConfig? Parse(YamlNode root, string fileName)
    {
        var config = new MeshConfig { SourcePath = fileName };
        if (IsNull(root))
        {
            return config; // a file of only comments
        }
        if (root is YamlSequenceNode legacy)
        {
            // The earliest ztunnel local configs were a bare list of workloads.
            config = config with { Workloads = ParseWorkloads(legacy, "workloads") };
            Validate(config);
            return config;
        }
        YamlMappingNode? map = r.Mapping(root, "");
        if (map is null)
        {
            return null;
        }

        YamlSequenceNode? workloadNodes = null, serviceNodes = null, policyNodes = null;
        var listeners = new ListenerConfig();
        YamlMappingNode? caNode = null;
        foreach ((YamlScalarNode key, string name, YamlNode value) in r.Entries(map, ""))
        {
            switch (name)
            {
                case "workloads":
                    workloadNodes = r.Sequence(value, name);
                    break;
                case "services":
                    serviceNodes = r.Sequence(value, name);
                    break;
                case "policies":
                    policyNodes = r.Sequence(value, name);
                    break;
                case "trustDomain":
                    string? td = r.String(value, name);
                    if (td is not null)
                    {
                        if (td.Length == 0 || td.Contains('/') || td.Contains(' '))
                        {
                            r.Error(value, name, $"'{td}' is not a trust domain (a DNS-like name such as cluster.local)");
                        }
                        else
                        {
                            config = config with { TrustDomain = td };
                        }
                    }
                    break;
                case "ca":
                    caNode = r.Mapping(value, name);
                    break;
                case "mode":
                    if (r.Enum(value, name, Modes) is AgentMode mode)
                    {
                        config = config with { Mode = mode };
                    }
                    break;
                case "listeners":
                    listeners = ParseListeners(value, name, listeners);
                    break;
                case "admin":
                    listeners = Endpoint(value, name) is { } admin ? listeners with { Admin = admin } : listeners;
                    break;
                case "metrics":
                    listeners = Endpoint(value, name) is { } metrics ? listeners with { Metrics = metrics } : listeners;
                    break;
                case "readiness":
                    listeners = Endpoint(value, name) is { } ready ? listeners with { Readiness = ready } : listeners;
                    break;
                case "accessLog":
                    if (r.Enum(value, name, AccessLogFormats) is AccessLogFormat format)
                    {
                        config = config with { AccessLog = format };
                    }
                    break;
                case "certificateLifetime":
                    // Renewal runs at half-life; shorter than a minute would renew in a busy loop.
                    if (Duration(value, name, TimeSpan.FromMinutes(1), "1m") is TimeSpan lifetime)
                    {
                        config = config with { CertificateLifetime = lifetime };
                    }
                    break;
                case "drainTimeout":
                    if (Duration(value, name) is TimeSpan drain)
                    {
                        config = config with { DrainTimeout = drain };
                    }
                    break;
                case "hboneIdleTimeout":
                    if (Duration(value, name, TimeSpan.FromSeconds(1), "1s") is TimeSpan idle)
                    {
                        config = config with { HboneIdleTimeout = idle };
                    }
                    break;
                case "inpod":
                    config = ParseInPod(value, config);
                    break;
                case "manifests":
                    if (r.Sequence(value, name) is { } manifestList)
                    {
                        var paths = ImmutableArray.CreateBuilder<string>();
                        for (int i = 0; i < manifestList.Children.Count; i++)
                        {
                            if (r.String(manifestList.Children[i], Index(name, i)) is { Length: > 0 } m)
                            {
                                paths.Add(ResolvePath(m));
                            }
                            else
                            {
                                r.Error(manifestList.Children[i], Index(name, i), "expected a file or directory path");
                            }
                        }
                        config = config with { Manifests = paths.ToImmutable() };
                    }
                    break;
                case "mcp":
                    config = config with { Mcp = ParseMcp(value) };
                    break;
                case "stateDir":
                    string? dir = r.String(value, name);
                    if (dir is not null)
                    {
                        if (dir.Length == 0)
                        {
                            r.Error(value, name, "must not be empty (omit the key for the default)");
                        }
                        else
                        {
                            config = config with { StateDir = ResolvePath(dir) };
                        }
                    }
                    break;
                default:
                    r.UnknownKey(key, "", TopLevelKeys, strict: true);
                    break;
            }
        }
        config = config with { Listeners = listeners };
        if (caNode is not null)
        {
            config = ParseCa(caNode, config);
        }
        config = config with
        {
            Workloads = workloadNodes is null ? [] : ParseWorkloads(workloadNodes, "workloads"),
            Services = serviceNodes is null ? [] : ParseServices(serviceNodes, "services"),
            Policies = policyNodes is null ? [] : ParsePolicies(policyNodes, "policies"),
        };
        Validate(config);
        return config;
    }

    /// <summary>
    /// A list of mappings (workloads, services, policies): each entry parsed by <paramref name="parse"/>, an empty
    /// entry reported as one. <paramref name="nodes"/> gets one slot per YAML entry (null where the entry was not
    /// usable), so the cross-checks after parsing can point at the right line.
    /// </summary>
    private ImmutableArray<T> ParseEntries<T>(YamlSequenceNode seq, string path, string what, List<YamlMappingNode?> nodes, Func<YamlMappingNode, string, T?> parse)
        where T : class
    {
        var b = ImmutableArray.CreateBuilder<T>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string p = Index(path, i);
            YamlMappingNode? map = r.Mapping(seq.Children[i], p);
            T? entry = null;
            if (map is not null)
            {
                entry = parse(map, p);
            }
            else if (IsNull(seq.Children[i]))
            {
                r.Error(seq.Children[i], p, $"empty {what} entry");
            }
            nodes.Add(entry is null ? null : map);
            if (entry is not null)
            {
                b.Add(entry);
            }
        }
        return b.ToImmutable();
    }

    /// <summary><c>mcp: [{name, address, precedence, version, staleAfter, rootCert, tokenFile}]</c>: one MCP registry each.</summary>
    private ImmutableArray<Sources.Mcp.McpRegistryOptions> ParseMcp(YamlNode node)
    {
        var list = ImmutableArray.CreateBuilder<Sources.Mcp.McpRegistryOptions>();
        if (r.Sequence(node, "mcp") is not { } seq)
        {
            return [];
        }
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string p = Index("mcp", i);
            if (r.Mapping(seq.Children[i], p) is not { } map)
            {
                continue;
            }
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach ((YamlScalarNode k, string name, YamlNode value) in r.Entries(map, p))
            {
                if (Array.IndexOf(McpKeys, name) < 0)
                {
                    r.UnknownKey(k, p, McpKeys, strict: true);
                }
                else if (r.String(value, Child(p, name)) is { } text)
                {
                    values[name] = text;
                }
            }
            if (!values.TryGetValue("address", out string? address))
            {
                r.Error(map, Child(p, "address"), "required: the MCP server (http://host:port or https://host:port)");
                continue;
            }
            try
            {
                var registry = Sources.Mcp.McpRegistryOptions.Create(
                    values.GetValueOrDefault("name") ?? (i == 0 ? "mcp" : $"mcp{i + 1}"), address, values.GetValueOrDefault("precedence"),
                    values.GetValueOrDefault("version"), values.GetValueOrDefault("staleAfter"),
                    values.GetValueOrDefault("rootCert") is { } root ? ResolvePath(root) : null,
                    values.GetValueOrDefault("tokenFile") is { } token ? ResolvePath(token) : null, p);
                if (list.Any(m => m.Name == registry.Name))
                {
                    r.Error(map, Child(p, "name"), $"'{registry.Name}' names another registry already");
                    continue;
                }
                list.Add(registry);
            }
            catch (FormatException ex)
            {
                r.Error(map, p, ex.Message[(p.Length + 2)..]);
            }
        }
        return list.ToImmutable();
    }

    private MeshConfig ParseInPod(YamlNode node, MeshConfig config)
    {
        YamlMappingNode? map = r.Mapping(node, "inpod");
        if (map is null)
        {
            return config;
        }
        var inpod = config.InPod;
        foreach ((YamlScalarNode k, string name, YamlNode value) in r.Entries(map, "inpod"))
        {
            string field = Child("inpod", name);
            switch (name)
            {
                case "cniSocket":
                    if (r.String(value, field) is { Length: > 0 } socket)
                    {
                        if (System.Text.Encoding.UTF8.GetByteCount(socket) > 107)
                        {
                            r.Error(value, field, "a unix socket path can be at most 107 bytes");
                        }
                        inpod = inpod with { CniSocket = ResolvePath(socket) };
                    }
                    break;
                case "enrollmentFile":
                    if (r.String(value, field) is { Length: > 0 } file)
                    {
                        inpod = inpod with { EnrollmentFile = ResolvePath(file) };
                    }
                    break;
                case "firewall":
                    if (r.Enum(value, field, Firewalls) is CaptureFirewall fw)
                    {
                        inpod = inpod with { Firewall = fw };
                    }
                    break;
                case "inboundCapture":
                    if (r.Enum(value, field, InboundCaptures) is InboundCapture ic)
                    {
                        inpod = inpod with { InboundCapture = ic };
                    }
                    break;
                case "namespaces":
                    if (value is YamlSequenceNode seq)
                    {
                        var list = System.Collections.Immutable.ImmutableArray.CreateBuilder<string>();
                        int i = 0;
                        foreach (var item in seq)
                        {
                            if (r.String(item, $"{field}[{i}]") is { Length: > 0 } ns)
                            {
                                list.Add(ns);
                            }
                            i++;
                        }
                        inpod = inpod with { Namespaces = list.ToImmutable() };
                    }
                    else if (!IsNull(value))
                    {
                        r.Error(value, field, "must be a list of namespace names");
                    }
                    break;
                case "all":
                    inpod = inpod with { All = r.Bool(value, field) ?? false };
                    break;
                default:
                    r.UnknownKey(k, "inpod", InPodKeys, strict: true);
                    break;
            }
        }
        return config with { InPod = inpod };
    }

    private MeshConfig ParseCa(YamlMappingNode node, MeshConfig config)
    {
        YamlNode? certNode = null, keyNode = null;
        string? cert = null, key = null;
        foreach ((YamlScalarNode k, string name, YamlNode value) in r.Entries(node, "ca"))
        {
            string path = Child("ca", name);
            switch (name)
            {
                case "certFile":
                    certNode = value;
                    cert = r.String(value, path);
                    break;
                case "keyFile":
                    keyNode = value;
                    key = r.String(value, path);
                    break;
                default:
                    r.UnknownKey(k, "ca", CaKeys, strict: true);
                    break;
            }
        }
        if (string.IsNullOrEmpty(cert) != string.IsNullOrEmpty(key))
        {
            // One without the other cannot sign; silently generating a CA instead would surprise.
            r.Error(certNode ?? keyNode ?? node, string.IsNullOrEmpty(cert) ? "ca.certFile" : "ca.keyFile",
                "ca.certFile and ca.keyFile must be given together (or omit ca: to generate a CA)");
            return config;
        }
        if (string.IsNullOrEmpty(cert) || string.IsNullOrEmpty(key))
        {
            return config;
        }
        string certPath = ResolvePath(cert);
        string keyPath = ResolvePath(key);
        CheckReadable(certNode!, "ca.certFile", certPath);
        CheckReadable(keyNode!, "ca.keyFile", keyPath);
        return config with { CaCertFile = certPath, CaKeyFile = keyPath };
    }

    private void CheckReadable(YamlNode node, string field, string path)
    {
        if (!File.Exists(path))
        {
            r.Error(node, field, $"file '{path}' does not exist");
        }
    }

    /// <summary>Relative paths are relative to the config file, so a config directory can be moved whole.</summary>
    private string ResolvePath(string path) =>
        baseDir is null || Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(baseDir, path));

    private ListenerConfig ParseListeners(YamlNode node, string path, ListenerConfig listeners)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return listeners;
        }
        foreach ((YamlScalarNode k, string name, YamlNode value) in r.Entries(map, path))
        {
            string field = Child(path, name);
            switch (name)
            {
                case "outbound":
                    listeners = Endpoint(value, field) is { } o ? listeners with { Outbound = o } : listeners;
                    break;
                case "inbound":
                    listeners = Endpoint(value, field) is { } i ? listeners with { Inbound = i } : listeners;
                    break;
                case "hbone":
                    listeners = Endpoint(value, field) is { } h ? listeners with { Hbone = h } : listeners;
                    break;
                case "socks5":
                    listeners = Endpoint(value, field) is { } s ? listeners with { Socks5 = s } : listeners;
                    break;
                default:
                    r.UnknownKey(k, path, ListenerKeys, strict: true);
                    break;
            }
        }
        return listeners;
    }

    private IPEndPoint? Endpoint(YamlNode node, string path)
    {
        string? text = r.String(node, path);
        if (text is null)
        {
            return null;
        }
        if (!ConfigValues.TryParseEndpoint(text, out IPEndPoint ep, out string error))
        {
            r.Error(node, path, error);
            return null;
        }
        _endpointNodes[path] = node;
        return ep;
    }

    /// <summary>A duration of at least <paramref name="min"/> (written <paramref name="minText"/> in the error).</summary>
    private TimeSpan? Duration(YamlNode node, string path, TimeSpan min, string minText)
    {
        if (Duration(node, path) is not TimeSpan value)
        {
            return null;
        }
        if (value < min)
        {
            r.Error(node, path, $"must be at least {minText}");
            return null;
        }
        return value;
    }

    private TimeSpan? Duration(YamlNode node, string path)
    {
        string? text = r.String(node, path);
        if (text is null)
        {
            return null;
        }
        if (!ConfigValues.TryParseDuration(text, out TimeSpan value, out string error))
        {
            r.Error(node, path, error);
            return null;
        }
        return value;
    }

    private IPAddress? Ip(YamlNode node, string path)
    {
        string? text = r.String(node, path);
        if (text is null)
        {
            return null;
        }
        if (!ConfigValues.TryParseIp(text, out IPAddress ip, out string error))
        {
            r.Error(node, path, error);
            return null;
        }
        return ip;
    }

    private ImmutableArray<string> Strings(YamlNode node, string path)
    {
        YamlSequenceNode? seq = r.Sequence(node, path);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<string>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            if (r.String(seq.Children[i], Index(path, i)) is { } s)
            {
                b.Add(s);
            }
        }
        return b.ToImmutable();
    }

    /// <summary>A port map "servicePort: targetPort" (target 0 = same as the service port).</summary>
    private ImmutableDictionary<int, int> PortMap(YamlNode node, string path)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return ImmutableDictionary<int, int>.Empty;
        }
        var b = ImmutableDictionary.CreateBuilder<int, int>();
        foreach ((YamlScalarNode k, string name, YamlNode value) in r.Entries(map, path))
        {
            string field = Child(path, name);
            int? port = r.Port(k, field, allowZero: false);
            int? target = r.Port(value, field, allowZero: true);
            if (port is int p && target is int t)
            {
                b[p] = t;
            }
        }
        return b.ToImmutable();
    }

    /// <summary>Istio GatewayAddress: <c>{destination: "ns/hostname" | "network/ip", hboneMtlsPort: 15008}</c>.</summary>
    private GatewayAddress? Gateway(YamlNode node, string path)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return null;
        }
        YamlNode? destNode = null;
        string? dest = null;
        int port = 15008;
        foreach ((YamlScalarNode k, string name, YamlNode value) in r.Entries(map, path))
        {
            switch (name)
            {
                case "destination":
                    destNode = value;
                    dest = r.String(value, Child(path, name));
                    break;
                case "hboneMtlsPort":
                    port = r.Port(value, Child(path, name), allowZero: false) ?? port;
                    break;
                default:
                    r.UnknownKey(k, path, ["destination", "hboneMtlsPort"], strict: false);
                    break;
            }
        }
        if (dest is null)
        {
            r.Error(destNode ?? map, Child(path, "destination"), "required: \"<namespace>/<hostname>\" or \"<network>/<ip>\"");
            return null;
        }
        int slash = dest.IndexOf('/');
        if (slash < 0)
        {
            r.Error(destNode, Child(path, "destination"), $"'{dest}' is neither \"<namespace>/<hostname>\" nor \"<network>/<ip>\"");
            return null;
        }
        // Istio tries the address form first (its untagged enum lists Address before Hostname).
        if (ConfigValues.TryParseIp(dest[(slash + 1)..], out IPAddress ip, out _))
        {
            return new GatewayAddress(null, null, ip, dest[..slash], port);
        }
        if (slash == 0 || slash == dest.Length - 1)
        {
            r.Error(destNode, Child(path, "destination"), $"'{dest}' must be \"<namespace>/<hostname>\" with both parts");
            return null;
        }
        return new GatewayAddress(dest[(slash + 1)..], dest[..slash], null, "", port);
    }
}
