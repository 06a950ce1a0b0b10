using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Sources;
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
/// The xDS source against a control plane on Node's gRPC stack (@grpc/grpc-js, @grpc/proto-loader and protobufjs loading
/// mesh/Protos), so the wire format is checked against an implementation that is not ours.
/// </summary>
public sealed class NodeXdsInteropTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    internal static string InteropDir([CallerFilePath] string thisFile = "") => Path.Combine(Path.GetDirectoryName(thisFile)!, "interop");

    private static string ProtoDir([CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "..", "..", "mesh", "Protos"));

    [NodeGrpcFact]
    public async Task A_grpc_js_control_plane_feeds_the_agent_and_reads_its_acks_and_nacks()
    {
        string prefix = $"127.63.{Random.Shared.Next(1, 250)}";
        var psi = new ProcessStartInfo(NodeInteropTests.FindNode()!)
        {
            WorkingDirectory = InteropDir(),
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(InteropDir(), "xds-server.js"));
        psi.ArgumentList.Add(ProtoDir());
        psi.ArgumentList.Add(prefix);
        using var node = Process.Start(psi)!;
        var lines = new ConcurrentQueue<JsonObject>();
        var stderr = new ConcurrentQueue<string>();
        var port = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        node.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line && JsonNode.Parse(line) is JsonObject o)
            {
                if (o["port"] is { } p)
                {
                    port.TrySetResult((int)p);
                }
                else
                {
                    lines.Enqueue(o);
                }
            }
        };
        node.ErrorDataReceived += (_, e) => { if (e.Data is not null) { stderr.Enqueue(e.Data); } };
        node.BeginOutputReadLine();
        node.BeginErrorReadLine();
        string dir = Directory.CreateTempSubdirectory("ambient-node-xds-").FullName;
        XdsSource? source = null;
        try
        {
            Task exited = node.WaitForExitAsync();
            if (await Task.WhenAny(port.Task, exited, Task.Delay(Timeout)) != port.Task)
            {
                Assert.Fail($"the node control plane did not start: {string.Join('\n', stderr)}");
            }
            string token = Path.Combine(dir, "token");
            await File.WriteAllTextAsync(token, "node-token");
            var options = new ControlPlaneOptions
            {
                XdsAddress = new Uri($"http://127.0.0.1:{port.Task.Result}"),
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
            long deadline = Environment.TickCount64 + (long)Timeout.TotalMilliseconds;
            while (lines.Count(l => ((string?)l["response_nonce"])?.Length > 0) < 2)
            {
                Assert.True(Environment.TickCount64 < deadline, "timed out waiting for the agent's answers");
                await Task.Delay(20);
            }
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
            node.StandardInput.Close();
            if (!node.WaitForExit(10_000))
            {
                node.Kill(entireProcessTree: true);
            }
            Directory.Delete(dir, recursive: true);
        }
    }
}
