using System.Net;
using Ambient.Mesh.Config;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Ztunnel.Tests.Proxy;

/// <summary>
/// Issue 13, finding 2: an empty or half-written config file must never be applied. A DENY policy is the canary:
/// applied, the empty file dropped it (and every workload); the first half of a two-part write lacked it.
/// </summary>
public sealed class ConfigReloadSafetyTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ztunnel-reload-safety-").FullName;
    private readonly IPAddress _client;
    private readonly IPAddress _server;
    private EchoServer? _echo;

    public ConfigReloadSafetyTests()
    {
        int octet = Random.Shared.Next(100, 200), subnet = Random.Shared.Next(1, 250);
        _client = IPAddress.Parse($"127.{octet}.{subnet}.10");
        _server = IPAddress.Parse($"127.{octet}.{subnet}.20");
    }

    private string Path => System.IO.Path.Combine(_dir, "mesh.yaml");

    /// <summary>One agent serves both workloads: client -> SOCKS5 -> HBONE to the agent's own 15008 -> echo.</summary>
    private string Workloads(string extra = "") => $"""
        listeners:
          outbound: {_client}:0
          inbound: {_client}:0
          hbone: {_server}:15008
          socks5: {_client}:0
        admin: {_client}:0
        metrics: {_client}:0
        readiness: {_client}:0
        drainTimeout: 1s
        workloads:
        - uid: t//v1/Pod/default/client
          name: client
          namespace: default
          serviceAccount: client
          workloadIps: [{_client}]
          protocol: HBONE
        - uid: t//v1/Pod/default/echo
          name: echo
          namespace: default
          serviceAccount: echo
          workloadIps: [{_server}]
          protocol: HBONE
        {extra}
        """;

    private const string DenyPolicy = """
        policies:
        - name: deny-client
          namespace: default
          scope: Namespace
          action: Deny
          rules:
          - - - principals: [{Exact: cluster.local/ns/default/sa/client}]

        """;

    private async Task<Agent> StartAsync()
    {
        _echo = new EchoServer(_server);
        await File.WriteAllTextAsync(Path, Workloads() + DenyPolicy);
        var loaded = ConfigLoader.LoadFile(Path);
        Assert.True(loaded.Ok, string.Join("\n", loaded.Errors));
        return await Agent.StartAsync(
            new AgentOptions { ConfigPath = Path, StateDir = System.IO.Path.Combine(_dir, "state"), AccessLogWriter = TextWriter.Null },
            loaded.Config!,
            NullLoggerFactory.Instance,
            new LogLevelSwitch(LogLevel.Information));
    }

    /// <summary>The SOCKS5 reply for client -> echo: 2 = denied by policy (the DENY policy is in force).</summary>
    private async Task<int> TryAsync(Agent agent)
    {
        var (socket, reply) = await Socks5Client.ConnectAsync(agent.EndPoints["socks5"], _client, _echo!.EndPoint);
        socket.Dispose();
        return reply;
    }

    [Fact]
    public async Task A_truncated_config_is_rejected_and_the_deny_policy_stays_in_force()
    {
        await using var agent = await StartAsync();
        Assert.Equal(2, await TryAsync(agent));

        await File.WriteAllTextAsync(Path, ""); // what `> mesh.yaml` leaves, or a writer that died
        await TwoNodeMesh.EventuallyAsync(
            () => agent.Metrics.Render().Contains("ambient_config_reloads_total{result=\"rejected\"} 1", StringComparison.Ordinal),
            "the empty file rejected", 20_000);

        Assert.Single(agent.State.Current.Policies);
        Assert.Equal(2, agent.State.Current.WorkloadCount);
        Assert.Equal(2, await TryAsync(agent)); // still denied by the policy (not "unknown source": the workloads stayed)
        Assert.Equal(0, _echo!.Accepted);
    }

    [Fact]
    public async Task A_config_rewritten_in_place_in_two_writes_is_never_applied_half_written()
    {
        await using var agent = await StartAsync();
        var applied = new List<int>(); // the policy count of every snapshot the agent applied
        agent.State.Changed += (_, next) =>
        {
            lock (applied)
            {
                applied.Add(next.Policies.Count());
            }
        };

        // An in-place rewrite in two writes, half a second apart: the first half is valid YAML without the policy.
        // The second half also adds a service, so the finished file differs from the original and is applied.
        string first = Workloads();
        string second = DenyPolicy + """
            services:
            - name: late
              namespace: default
              hostname: late.default.svc.cluster.local
              vips: [/127.0.0.99]
              ports:
                80: 8080

            """;
        await using (var file = new FileStream(Path, FileMode.Truncate, FileAccess.Write, FileShare.ReadWrite))
        {
            await file.WriteAsync(System.Text.Encoding.UTF8.GetBytes(first));
            await file.FlushAsync();
            await Task.Delay(500);
            Assert.Equal(2, await TryAsync(agent)); // in the window between the writes, the policy holds
            await file.WriteAsync(System.Text.Encoding.UTF8.GetBytes(second));
        }

        await TwoNodeMesh.EventuallyAsync(() => agent.State.Current.Services.Count() == 1, "the finished file applied", 20_000);
        lock (applied)
        {
            Assert.DoesNotContain(0, applied);
        }
        Assert.Single(agent.State.Current.Policies);
        Assert.Equal(2, await TryAsync(agent));
    }

    public async ValueTask DisposeAsync()
    {
        if (_echo is not null)
        {
            await _echo.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }
}
