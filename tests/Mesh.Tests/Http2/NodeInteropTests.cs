using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Ambient.Mesh.Http2;

namespace Ambient.Mesh.Tests.Http2;

/// <summary>Skips (with the reason) when node is not installed.</summary>
public sealed class NodeFactAttribute : FactAttribute
{
    public NodeFactAttribute()
    {
        if (NodeInteropTests.FindNode() is null)
        {
            Skip = "node not found on PATH or at /usr/bin/node: the Node http2 (nghttp2) interop tests need it.";
        }
    }
}

/// <summary>Interop with an independent HTTP/2 implementation: Node's http2 module, which is built on nghttp2.</summary>
public sealed class NodeInteropTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    internal static string? FindNode()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin"))
        {
            string candidate = Path.Combine(dir, "node");
            if (dir.Length > 0 && File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The scripts live next to this file; a build that copies them to the output directory is preferred.</summary>
    private static string Script(string name, [CallerFilePath] string thisFile = "")
    {
        string copied = Path.Combine(AppContext.BaseDirectory, "Http2", "interop", name);
        return File.Exists(copied) ? copied : Path.Combine(Path.GetDirectoryName(thisFile)!, "interop", name);
    }

    private static Process StartNode(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(FindNode()!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Script(script));
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    [NodeFact]
    public async Task NodeClientTunnelsThroughOurServer()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var connections = new List<Http2Connection>();
        using var cts = new CancellationTokenSource();
        Task accept = Task.Run(async () =>
        {
            while (!cts.IsCancellationRequested)
            {
                Socket socket = await listener.AcceptSocketAsync(cts.Token);
                socket.NoDelay = true;
                var server = Http2Connection.CreateServer(new NetworkStream(socket, ownsSocket: true), new Http2Options(), Http2TestUtil.EchoHandler, TestLogger.Instance);
                lock (connections)
                {
                    connections.Add(server);
                }

                server.Start();
            }
        });

        using Process node = StartNode("h2c-connect-client.js", port.ToString(), "30", (1024 * 1024).ToString());
        Task<string> stdout = node.StandardOutput.ReadToEndAsync();
        Task<string> stderr = node.StandardError.ReadToEndAsync();
        try
        {
            await node.WaitForExitAsync().WaitAsync(s_timeout);
        }
        finally
        {
            if (!node.HasExited)
            {
                node.Kill(entireProcessTree: true);
            }

            cts.Cancel();
        }

        string output = await stdout;
        Assert.True(node.ExitCode == 0, $"node client failed ({node.ExitCode}): {output} {await stderr}");
        Assert.Contains("\"ok\":true", output);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accept);
        foreach (Http2Connection c in connections)
        {
            // Node closed its session; our side must notice and complete.
            await c.Completion.WaitAsync(s_timeout);
            Assert.Equal(30, c.TotalStreams);
        }
    }

    [NodeFact]
    public async Task OurClientTunnelsThroughNodeServer()
    {
        using Process node = StartNode("h2c-connect-server.js");
        Task<string> stderr = node.StandardError.ReadToEndAsync();
        try
        {
            string? line = await node.StandardOutput.ReadLineAsync().WaitAsync(s_timeout);
            Assert.True(int.TryParse(line, out int port), $"node server did not report a port: {line} {(node.HasExited ? await stderr : "")}");

            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(s_timeout);
            await using var client = Http2Connection.CreateClient(new NetworkStream(socket, ownsSocket: true), new Http2Options(), TestLogger.Instance);
            client.Start();

            var tasks = new List<Task>();
            for (int i = 0; i < 30; i++)
            {
                int n = i;
                tasks.Add(Task.Run(async () =>
                {
                    var payload = new byte[1024 * 1024];
                    new Random(n).NextBytes(payload);
                    string authority = $"10.0.{n}.1:8080";
                    Http2Stream stream = await client.OpenStreamAsync(
                        [new(":method", "CONNECT"), new(":authority", authority), new("baggage", "k8s.namespace.name=default")],
                        CancellationToken.None);
                    Http2Response response = await stream.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
                    Assert.Equal(200, response.Status);
                    Assert.Contains(new HeaderField("x-authority", authority), response.Headers);
                    Task<byte[]> read = Http2TestUtil.ReadAllAsync(stream.Input);
                    await Http2TestUtil.WriteChunkedAsync(stream, payload, 32 * 1024);
                    await stream.CompleteWritesAsync(CancellationToken.None);
                    byte[] echoed = await read.WaitAsync(s_timeout);
                    Assert.True(payload.AsSpan().SequenceEqual(echoed), $"stream {stream.Id}: {echoed.Length} bytes echoed, content differs");
                    await stream.Completion.WaitAsync(s_timeout);
                }));
            }

            await Task.WhenAll(tasks).WaitAsync(s_timeout);

            // A reset from our side must not disturb the session.
            Http2Stream reset = await client.OpenStreamAsync(Http2TestUtil.Connect("10.9.9.9:1"), CancellationToken.None);
            await reset.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout);
            reset.Reset(Http2ErrorCode.Cancel);
            Http2Stream after = await client.OpenStreamAsync(Http2TestUtil.Connect("10.9.9.9:2"), CancellationToken.None);
            Assert.Equal(200, (await after.ReadResponseHeadersAsync(CancellationToken.None).AsTask().WaitAsync(s_timeout)).Status);
            await after.CompleteWritesAsync(CancellationToken.None);
            Assert.Empty(await Http2TestUtil.ReadAllAsync(after.Input));

            await client.ShutdownAsync();
            await client.Completion.WaitAsync(s_timeout);
        }
        finally
        {
            node.StandardInput.Close();
            if (!node.WaitForExit(5000))
            {
                node.Kill(entireProcessTree: true);
            }
        }
    }
}
