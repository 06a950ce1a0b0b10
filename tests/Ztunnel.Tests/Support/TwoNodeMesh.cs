using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Admin;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Ztunnel.Tests.Support;

/// <summary>
/// Two agents on loopback, as two nodes: a client workload on node-a and an echo workload (behind a service VIP) on
/// node-b. Each instance takes its own 127.X.N.0/24 (the VIP included: every address the agents dial stays on this
/// machine, see <see cref="TestAddresses"/>) so tests run in parallel without port clashes; the echo workload's agent
/// listens on its workload IP's port 15008, as a pod's would.
/// </summary>
internal sealed class TwoNodeMesh : IAsyncDisposable
{
    private static int s_next;

    // Another test process (a second `dotnet test`, a developer's run) may use this class at the same time: a
    // per-process second octet keeps two processes' agents from answering each other's 15008.
    private static readonly int s_octet = 100 + Random.Shared.Next(100);
    private readonly List<IAsyncDisposable> _owned = [];
    // Borrowed from the test (or the shared null factory): the test disposes what it passed in.
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2213", Justification = "borrowed from the caller")]
    private ILoggerFactory _loggers = NullLoggerFactory.Instance;
    private Func<AgentOptions, AgentOptions> _options = o => o;

    private TwoNodeMesh(int n)
    {
        Subnet = n;
        ClientIp = IPAddress.Parse($"127.{s_octet}.{n}.10");
        ServerIp = IPAddress.Parse($"127.{s_octet}.{n}.20");
        // Nothing listens on the VIP itself: if the mesh ever failed to resolve it, the dial would be refused
        // locally instead of going to a real private address.
        ServiceVip = IPAddress.Parse($"127.{s_octet}.{n}.1");
        StateDir = Directory.CreateTempSubdirectory("ambient-test-").FullName;
    }

    public int Subnet { get; }
    public IPAddress ClientIp { get; }
    public IPAddress ServerIp { get; }
    public IPAddress ServiceVip { get; }
    public string StateDir { get; }
    public const int ServicePort = 80;
    public EchoServer Echo { get; private set; } = null!;
    public Agent NodeA { get; private set; } = null!;
    public Agent NodeB { get; private set; } = null!;
    public StringWriter AccessLogA { get; } = new();
    public StringWriter AccessLogB { get; } = new();
    public MeshConfig Config { get; private set; } = null!;

    public const string ServiceHostname = "echo.default.svc.cluster.local";

    /// <param name="customize">Edits the shared config (policies, protocols) before the agents start.</param>
    /// <param name="separateCaForNodeB">Gives node-b its own CA, so the nodes don't trust each other.</param>
    /// <param name="loggers">The agents' logs (none by default).</param>
    /// <param name="options">Edits both agents' options (e.g. a DNS resolver that never leaves the machine).</param>
    public static async Task<TwoNodeMesh> StartAsync(
        Func<TwoNodeMesh, MeshConfig, MeshConfig>? customize = null,
        bool separateCaForNodeB = false,
        ILoggerFactory? loggers = null,
        Func<AgentOptions, AgentOptions>? options = null)
    {
        var mesh = new TwoNodeMesh(Interlocked.Increment(ref s_next) % 250 + 1)
        {
            _loggers = loggers ?? NullLoggerFactory.Instance,
            _options = options ?? (o => o),
        };
        try
        {
            mesh.Echo = new EchoServer(mesh.ServerIp);
            mesh._owned.Add(mesh.Echo);
            var config = mesh.BaseConfig();
            if (customize is not null)
            {
                config = customize(mesh, config);
            }
            TestAddresses.AssertDialable(config);
            mesh.Config = config;
            mesh.NodeA = await mesh.StartAgentAsync("node-a", mesh.ClientIp, config, mesh.StateDir, mesh.AccessLogA);
            string stateB = separateCaForNodeB ? Directory.CreateTempSubdirectory("ambient-test-b-").FullName : mesh.StateDir;
            mesh.NodeB = await mesh.StartAgentAsync("node-b", mesh.ServerIp, config, stateB, mesh.AccessLogB);
            return mesh;
        }
        catch
        {
            await mesh.DisposeAsync();
            throw;
        }
    }

    public MeshConfig BaseConfig() => new()
    {
        TrustDomain = "cluster.local",
        Workloads =
        [
            new Workload
            {
                Uid = "cluster1//v1/Pod/default/client",
                Name = "client",
                Namespace = "default",
                ServiceAccount = "client",
                WorkloadIps = [ClientIp],
                Protocol = InboundProtocol.Hbone,
                Node = "node-a",
            },
            new Workload
            {
                Uid = "cluster1//v1/Pod/default/echo",
                Name = "echo",
                Namespace = "default",
                ServiceAccount = "echo",
                WorkloadIps = [ServerIp],
                Protocol = InboundProtocol.Hbone,
                Node = "node-b",
                Services = ImmutableDictionary<string, ImmutableDictionary<int, int>>.Empty
                    .Add($"default/{ServiceHostname}", ImmutableDictionary<int, int>.Empty.Add(ServicePort, Echo.EndPoint.Port)),
            },
        ],
        Services =
        [
            new Service
            {
                Name = "echo",
                Namespace = "default",
                Hostname = ServiceHostname,
                Vips = [new NetworkAddress("", ServiceVip)],
                Ports = ImmutableDictionary<int, int>.Empty.Add(ServicePort, Echo.EndPoint.Port),
            },
        ],
    };

    private async Task<Agent> StartAgentAsync(string node, IPAddress ip, MeshConfig config, string stateDir, StringWriter accessLog, string? configPath = null)
    {
        var agent = await Agent.StartAsync(
            _options(new AgentOptions { NodeName = node, StateDir = stateDir, AccessLogWriter = TextWriter.Synchronized(accessLog), ConfigPath = configPath }),
            InProcessAgent.WithListeners(config, ip),
            _loggers,
            new LogLevelSwitch(LogLevel.Information));
        _owned.Insert(0, agent);
        return agent;
    }

    /// <summary>Opens a connection from the client workload to <paramref name="target"/> via node-a's SOCKS5 listener.</summary>
    public Task<(System.Net.Sockets.Socket Socket, int Reply)> ConnectAsync(IPEndPoint target, IPAddress? source = null) =>
        Socks5Client.ConnectAsync(NodeA.EndPoints["socks5"], source ?? ClientIp, target);

    public IPEndPoint ServiceEndPoint => new(ServiceVip, ServicePort);

    /// <summary>GETs a path from one of an agent's HTTP ports.</summary>
    public static async Task<(int Status, string Body)> GetAsync(IPEndPoint endpoint, string path, string method = "GET")
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var req = new HttpRequestMessage(new HttpMethod(method), $"http://{endpoint}{path}");
        using var resp = await http.SendAsync(req);
        return ((int)resp.StatusCode, await resp.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// Waits until an asynchronous <paramref name="condition"/> holds. Never block on a task inside the synchronous
    /// overload's condition: with inline socket completions the test may be running on the socket engine's thread,
    /// which the awaited I/O then needs.
    /// </summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!await condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                Assert.Fail($"timed out waiting for: {what}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds (access logs are written as connections end).</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                Assert.Fail($"timed out waiting for: {what}");
            }
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Environment.GetEnvironmentVariable("AMBIENT_TEST_DUMP") is { Length: > 0 } dumpDir)
        {
            Directory.CreateDirectory(dumpDir);
            await File.WriteAllTextAsync(Path.Combine(dumpDir, $"mesh-{Subnet}.log"), $"== node-a\n{AccessLogA}\n== node-b\n{AccessLogB}\n");
        }
        foreach (var d in _owned)
        {
            try
            {
                await d.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (Exception)
            {
                // Keep disposing the rest.
            }
        }
        try
        {
            Directory.Delete(StateDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
