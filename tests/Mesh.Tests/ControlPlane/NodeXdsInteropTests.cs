using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Sources;
using Ambient.Mesh.Sources.Mcp;
using Ambient.Mesh.Sources.Xds;
using Ambient.Mesh.Tests.Http2;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Mesh.Tests.ControlPlane;

/// <summary>Skips (with the reason) when node or the interop script's npm packages are missing (test.sh installs both).</summary>
public sealed class NodeGrpcFactAttribute : FactAttribute
{
    public NodeGrpcFactAttribute()
    {
        if (NodeInteropTests.FindNode() is null)
        {
            Skip = "node not found on PATH or at /usr/bin/node: the @grpc/grpc-js interop test needs it.";
        }
        else if (!Directory.Exists(Path.Combine(NodeXdsInteropTests.InteropDir(), "node_modules", "@grpc", "grpc-js")))
        {
            Skip = $"@grpc/grpc-js is not installed in {NodeXdsInteropTests.InteropDir()}: run 'npm ci' there (test.sh does).";
        }
    }
}

/// <summary>
/// The xDS and MCP sources against servers on Node's gRPC stack (@grpc/grpc-js, @grpc/proto-loader and protobufjs loading
/// mesh/Protos), so the wire format is checked against an implementation that is not ours.
/// </summary>
public sealed class NodeXdsInteropTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    internal static string InteropDir([CallerFilePath] string thisFile = "") => Path.Combine(Path.GetDirectoryName(thisFile)!, "interop");

    private static string ProtoDir([CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "..", "..", "mesh", "Protos"));

    /// <summary>A node script started with the proto directory and an address prefix; its JSON lines, after the port line.</summary>
    private sealed class NodeScript : IDisposable
    {
        private readonly Process _node;
        private readonly ConcurrentQueue<string> _stderr = new();
        private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public NodeScript(string script, string prefix)
        {
            var psi = new ProcessStartInfo(NodeInteropTests.FindNode()!)
            {
                WorkingDirectory = InteropDir(),
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(Path.Combine(InteropDir(), script));
            psi.ArgumentList.Add(ProtoDir());
            psi.ArgumentList.Add(prefix);
            _node = Process.Start(psi)!;
            _node.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { Length: > 0 } line && JsonNode.Parse(line) is JsonObject o)
                {
                    if (o["port"] is { } p)
                    {
                        _port.TrySetResult((int)p);
                    }
                    else
                    {
                        Lines.Enqueue(o);
                    }
                }
            };
            _node.ErrorDataReceived += (_, e) => { if (e.Data is not null) { _stderr.Enqueue(e.Data); } };
            _node.BeginOutputReadLine();
            _node.BeginErrorReadLine();
        }

        public ConcurrentQueue<JsonObject> Lines { get; } = new();

        /// <summary>The port it listens on, once it does.</summary>
        public async Task<int> PortAsync()
        {
            Task exited = _node.WaitForExitAsync();
            if (await Task.WhenAny(_port.Task, exited, Task.Delay(Timeout)) != _port.Task)
            {
                Assert.Fail($"the node server did not start: {string.Join('\n', _stderr)}");
            }
            return _port.Task.Result;
        }

        public async Task WaitForLinesAsync(Func<JsonObject, bool> which, int count)
        {
            long deadline = Environment.TickCount64 + (long)Timeout.TotalMilliseconds;
            while (Lines.Count(which) < count)
            {
                Assert.True(Environment.TickCount64 < deadline, "timed out waiting for the agent's answers");
                await Task.Delay(20);
            }
        }

        public void Dispose()
        {
            _node.StandardInput.Close();
            if (!_node.WaitForExit(10_000))
            {
                _node.Kill(entireProcessTree: true);
            }
            _node.Dispose();
        }
    }

    [NodeGrpcFact]
    public async Task A_grpc_js_control_plane_feeds_the_agent_and_reads_its_acks_and_nacks()
    {
        string prefix = $"127.63.{Random.Shared.Next(1, 250)}";
        using var node = new NodeScript("xds-server.js", prefix);
        var lines = node.Lines;
        string dir = Directory.CreateTempSubdirectory("ambient-node-xds-").FullName;
        XdsSource? source = null;
        try
        {
            int port = await node.PortAsync();
            string token = Path.Combine(dir, "token");
            await File.WriteAllTextAsync(token, "node-token");
            var options = new ControlPlaneOptions
            {
                XdsAddress = new Uri($"http://127.0.0.1:{port}"),
                TokenFile = token,
                ClusterId = "east",
                PodName = "ztunnel-x",
                PodNamespace = "istio-system",
                NodeName = "node-a",
                InstanceIp = "127.0.0.1",
            };
            var store = new MeshStore(NullLogger<MeshStore>.Instance);
            source = new XdsSource(store, options, new ControlPlaneConnection(options.XdsAddress, null, token, "east"), NullLogger.Instance);
            await source.StartAsync(CancellationToken.None);
            await source.Source.Synced.WaitAsync(Timeout);

            // What protobufjs encoded, as the agent decoded it.
            var snapshot = store.Current;
            var echo = snapshot.FindWorkloadByIp(IPAddress.Parse($"{prefix}.20"));
            Assert.NotNull(echo);
            Assert.Equal(("node-echo", "echo", Model.InboundProtocol.Hbone), (echo.Name, echo.ServiceAccount, echo.Protocol));
            Assert.Equal(8080, echo.Services["shop/node-echo.shop.svc.cluster.local"][80]);
            var service = snapshot.FindServiceByVip(IPAddress.Parse($"{prefix}.100"));
            Assert.Equal(8080, service?.Ports[80]);
            var policy = snapshot.FindPolicy("shop/deny-bad");
            Assert.NotNull(policy);
            Assert.Equal((Model.PolicyScope.WorkloadSelector, Model.PolicyAction.Deny), (policy.Scope, policy.Action));
            var match = policy.Rules.Single().Clauses.Single().Matches.Single();
            Assert.Equal(8080, match.DestinationPorts.Single());
            Assert.Equal(new Model.StringMatch(Model.StringMatchKind.Exact, "cluster.local/ns/shop/sa/bad"), match.Principals.Single());
            Assert.Null(snapshot.FindWorkloadByUid("Kubernetes//Pod/shop/broken"));

            // What grpc-js decoded from the agent: the node, the call metadata, an ACK and a NACK naming the bad resource.
            await node.WaitForLinesAsync(l => ((string?)l["response_nonce"])?.Length > 0, 2);
            var initial = lines.Where(l => (string?)l["response_nonce"] == "").ToList();
            Assert.Equal(2, initial.Count);
            Assert.All(initial, l => Assert.Equal("ztunnel~127.0.0.1~ztunnel-x.istio-system~istio-system.svc.cluster.local", (string?)l["node_id"]));
            Assert.Equal("east", (string?)initial[0]["metadata"]!["CLUSTER_ID"]);
            Assert.Equal("node-a", (string?)initial[0]["metadata"]!["NODE_NAME"]);
            Assert.All(lines, l => Assert.Equal("Bearer node-token", (string?)l["authorization"]));
            Assert.All(lines, l => Assert.Equal("east", (string?)l["clusterid"]));
            var answers = lines.Where(l => ((string?)l["response_nonce"])?.Length > 0).ToDictionary(l => (string)l["type_url"]!);
            Assert.Null((string?)answers[XdsSource.AuthorizationType]["error"]);
            Assert.Equal("istio.workload.Address/Kubernetes//Pod/shop/broken: addresses: 3 bytes is not an IPv4 (4) or IPv6 (16) address",
                (string?)answers[XdsSource.AddressType]["error"]);
        }
        finally
        {
            if (source is not null)
            {
                await source.StopAsync(CancellationToken.None).WaitAsync(Timeout);
                await source.DisposeAsync();
            }
            Directory.Delete(dir, recursive: true);
        }
    }

    [NodeGrpcFact]
    public async Task A_grpc_js_mcp_registry_serves_a_service_entry_and_reads_the_acks_and_nacks()
    {
        string prefix = $"127.65.{Random.Shared.Next(1, 250)}";
        using var node = new NodeScript("mcp-server.js", prefix);
        int port = await node.PortAsync();
        var store = new MeshStore(NullLogger<MeshStore>.Instance);
        var address = new Uri($"http://127.0.0.1:{port}");
        var source = new McpSource(store, new McpRegistryOptions { Name = "node", Address = address, Precedence = 25 },
            new ControlPlaneConnection(address, null, null, "Kubernetes"), new Ambient.Mesh.Kubernetes.KubeTranslator(), NullLogger.Instance);
        await using (source)
        {
            await source.StartAsync(CancellationToken.None);
            await source.Source.Synced.WaitAsync(Timeout);

            // What protobufjs encoded, as the agent decoded and translated it.
            var service = store.Current.FindServiceByVip(IPAddress.Parse($"{prefix}.100"));
            Assert.NotNull(service);
            Assert.Equal("shop/node-echo.shop.registry", service.Key);
            var endpoint = store.Current.FindWorkloadByIp(IPAddress.Parse($"{prefix}.20"));
            Assert.NotNull(endpoint);
            Assert.Equal("echo", endpoint.ServiceAccount);
            Assert.Equal(9090, endpoint.Services["shop/node-echo.shop.registry"][80]); // the endpoint's named port wins over targetPort

            // What grpc-js decoded from the agent: the GVK subscriptions, an ACK, and a NACK naming the bad resource.
            await node.WaitForLinesAsync(l => ((string?)l["response_nonce"])?.Length > 0, 2);
            var lines = node.Lines.ToList();
            Assert.Contains(lines, l => (string?)l["type_url"] == "networking.istio.io/v1/ServiceEntry" && (string?)l["response_nonce"] == "");
            Assert.Contains(lines, l => (string?)l["type_url"] == "networking.istio.io/v1/WorkloadEntry" && (string?)l["response_nonce"] == "");
            var answers = lines.Where(l => ((string?)l["response_nonce"])?.Length > 0).ToDictionary(l => (string)l["type_url"]!);
            var workloadAck = answers["networking.istio.io/v1/WorkloadEntry"];
            Assert.Null((string?)workloadAck["error"]);
            Assert.Equal("node-v1", (string?)workloadAck["version_info"]);
            var nack = answers["networking.istio.io/v1/ServiceEntry"];
            Assert.Equal("ServiceEntry no-namespace: metadata.name 'no-namespace' is not 'namespace/name'", (string?)nack["error"]);
            Assert.Equal("", (string?)nack["version_info"]); // nothing of that type accepted whole before
            await source.StopAsync(CancellationToken.None).WaitAsync(Timeout);
        }
    }
}
