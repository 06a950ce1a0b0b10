using System.Globalization;
using Ambient.Mesh.ControlPlane;

namespace Ambient.Mesh.Sources.Mcp;

/// <summary>
/// One MCP registry (Nacos, Consul's bridge, an in-house one): where it is, the name its objects carry in
/// /config_dump, its precedence against the other sources, and how long its last state outlives a lost connection.
/// </summary>
public sealed record McpRegistryOptions
{
    /// <summary>Below the Kubernetes API and istiod (30): the cluster's own view wins a host both claim, unless a registry says otherwise.</summary>
    public const int DefaultPrecedence = 20;

    /// <summary>How long a registry that went away keeps its objects in the mesh.</summary>
    public static readonly TimeSpan DefaultStaleAfter = TimeSpan.FromMinutes(5);

    /// <summary>Names the store source (<c>mcp:NAME</c>); unique among registries.</summary>
    public required string Name { get; init; }

    /// <summary>The MCP server: https verifies it against <see cref="RootCert"/>; http is plaintext (tests and local use).</summary>
    public required Uri Address { get; init; }

    /// <summary>Higher wins a key two sources publish; on a tie, the registry listed first.</summary>
    public int Precedence { get; init; } = DefaultPrecedence;

    /// <summary>The API version in the type URLs asked for: "v1" (Istio 1.22+), or "v1alpha3" (what Nacos serves).</summary>
    public string ApiVersion { get; init; } = "v1";

    /// <summary>After this long without a connection the registry's objects are withdrawn (and readiness stops waiting for it).</summary>
    public TimeSpan StaleAfter { get; init; } = DefaultStaleAfter;

    /// <summary>PEM roots for an https registry.</summary>
    public string RootCert { get; init; } = ControlPlaneOptions.DefaultRootCert;

    /// <summary>Bearer token file sent on every call; null = none (registries do not expect Istio's token).</summary>
    public string? TokenFile { get; init; }

    private static readonly string[] Keys = ["name", "url", "address", "precedence", "version", "staleAfter", "rootCert", "tokenFile"];

    /// <summary>
    /// Parses a <c>--mcp-address</c> value: either a bare URL (name "mcp", then "mcp2", ... by position) or
    /// comma-separated <c>key=value</c> pairs: <c>name=nacos,url=http://127.0.0.1:18848,precedence=25,version=v1alpha3,staleAfter=5m,rootCert=FILE,tokenFile=FILE</c>.
    /// Throws <see cref="FormatException"/> saying what is wrong.
    /// </summary>
    public static McpRegistryOptions Parse(string value, int position)
    {
        string defaultName = position == 0 ? "mcp" : $"mcp{position + 1}";
        if (!value.Contains('=', StringComparison.Ordinal))
        {
            return new McpRegistryOptions { Name = defaultName, Address = ControlPlaneOptions.ParseAddress(value, "--mcp-address") };
        }
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? part : part[..eq];
            if (eq < 0 || Array.IndexOf(Keys, key) < 0)
            {
                throw new FormatException($"--mcp-address: '{part}' is not one of {string.Join(", ", Keys.Select(k => k + "=..."))}");
            }
            pairs[key == "address" ? "url" : key] = part[(eq + 1)..];
        }
        return Create(
            pairs.GetValueOrDefault("name") ?? defaultName,
            pairs.GetValueOrDefault("url") ?? throw new FormatException("--mcp-address: url=... is required"),
            pairs.GetValueOrDefault("precedence"), pairs.GetValueOrDefault("version"), pairs.GetValueOrDefault("staleAfter"),
            pairs.GetValueOrDefault("rootCert"), pairs.GetValueOrDefault("tokenFile"), "--mcp-address");
    }

    /// <summary>Builds and checks one registry (the command line and the config file's <c>mcp:</c> list share it).</summary>
    public static McpRegistryOptions Create(string name, string url, string? precedence, string? version, string? staleAfter, string? rootCert, string? tokenFile, string what)
    {
        if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new FormatException($"{what}: name '{name}' must be letters, digits, '-', '_' or '.'");
        }
        int p = DefaultPrecedence;
        if (precedence is not null && !int.TryParse(precedence, NumberStyles.Integer, CultureInfo.InvariantCulture, out p))
        {
            throw new FormatException($"{what}: precedence '{precedence}' is not an integer");
        }
        string v = version ?? "v1";
        if (v is not ("v1" or "v1beta1" or "v1alpha3"))
        {
            throw new FormatException($"{what}: version '{v}' is not v1, v1beta1 or v1alpha3");
        }
        TimeSpan stale = DefaultStaleAfter;
        if (staleAfter is not null && (!Config.ConfigValues.TryParseDuration(staleAfter, out stale, out _) || stale <= TimeSpan.Zero))
        {
            throw new FormatException($"{what}: staleAfter '{staleAfter}' is not a positive duration (300s, 5m, 1h)");
        }
        return new McpRegistryOptions
        {
            Name = name,
            Address = ControlPlaneOptions.ParseAddress(url, what),
            Precedence = p,
            ApiVersion = v,
            StaleAfter = stale,
            RootCert = rootCert ?? ControlPlaneOptions.DefaultRootCert,
            TokenFile = tokenFile,
        };
    }
}
