using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.Interop;

/// <summary>Runs js/hbone-client.js (Node's http2, i.e. nghttp2) against an agent's HBONE port and parses its report.</summary>
internal static class NodeHboneClient
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(40);
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static async Task<NodeReport> RunAsync(IPEndPoint hbone, MeshPki pki, string certFile, string keyFile, params NodeRequest[] requests)
    {
        var job = new
        {
            url = $"https://{hbone}",
            ca = pki.CaFile,
            cert = certFile,
            key = keyFile,
            timeoutMs = 30_000,
            requests,
        };
        var script = Path.Combine(AppContext.BaseDirectory, "Interop", "js", "hbone-client.js");
        await using var node = await ExternalProcess.RunAsync("node", [script, JsonSerializer.Serialize(job, Json)], stdin: null, Timeout);
        var stdout = node.Stdout.Trim();
        Assert.True(node.ExitCode == 0, $"node exited {node.ExitCode}; stdout: {stdout}; stderr: {node.Stderr}");
        return JsonSerializer.Deserialize<NodeReport>(stdout, Json) ?? throw new InvalidOperationException($"node printed no report: {node.Stderr}");
    }
}

internal sealed record NodeRequest(string Method, string Authority, int PayloadSize = 0, string? Path = null);

internal sealed record NodeReport(string? Alpn, bool? Authorized, string? SessionError, List<NodeResult> Requests);

internal sealed record NodeResult(
    int? Status,
    int? RstCode,
    string? Error,
    long Sent,
    long Received,
    bool? Intact,
    bool Ended)
{
    [JsonIgnore]
    public string Describe => $"status={Status} rst={RstCode} error={Error} sent={Sent} received={Received} intact={Intact} ended={Ended}";
}
