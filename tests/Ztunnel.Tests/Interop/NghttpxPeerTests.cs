using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.Interop;

/// <summary>
/// The agent's outbound HBONE client against a foreign HBONE server: nghttpx in HTTP/2 proxy mode terminates the mTLS
/// + HTTP/2 CONNECT exactly where a destination ztunnel would (the workload's IP, port 15008) and hands the CONNECT
/// to tinyproxy over HTTP/1.1, which opens the TCP connection to the real app. Neither knows anything about the mesh
/// beyond the certificates we give them.
/// </summary>
public sealed class NghttpxPeerTests
{
    private const string ProxyAccount = "h2proxy";

    [RequiresToolsFact("nghttpx", "tinyproxy")]
    public async Task Outbound_tunnel_through_nghttpx_and_tinyproxy_echoes_bytes_intact()
    {
        await using var rig = await ForeignHbonePeer.StartAsync(serverAccount: ProxyAccount);
        var payload = RandomNumberGenerator.GetBytes(300_000);

        var (socket, reply) = await rig.Mesh.ConnectAsync(rig.AppEndPoint);
        using (socket)
        {
            Assert.True(reply == 0, $"SOCKS5 reply {reply}; node-a log: {rig.Mesh.AccessLogA}; nghttpx: {rig.NghttpxLog()}");
            // Read exactly what was sent rather than to EOF: neither tinyproxy 1.11 nor nghttpx 1.52 relays a
            // half-close on a CONNECT tunnel (tinyproxy drops both legs on the client's FIN; nghttpx never turns
            // END_STREAM into a FIN towards an HTTP/1.1 backend; both checked by hand with a plain CONNECT), so an
            // EOF-based exchange would hang on them, not on the agent. The agent's half-close is covered by the Node tests.
            var send = socket.SendAsync(payload, SocketFlags.None);
            var echoed = new byte[payload.Length];
            await Socks5Client.ReadExactlyAsync(socket, echoed);
            await send.WaitAsync(Socks5Client.Timeout);
            Assert.True(payload.AsSpan().SequenceEqual(echoed), "bytes differ after the nghttpx -> tinyproxy round trip");

            // While the tunnel is open: nghttpx decoded our CONNECT (its INFO log prints the request as it parsed
            // it) and tinyproxy carried it out towards the app.
            await TwoNodeMesh.EventuallyAsync(() => rig.NghttpxLog().Contains($":authority: {rig.AppEndPoint}", StringComparison.Ordinal), "nghttpx logging the CONNECT");
            var parsed = rig.NghttpxLog();
            Assert.Contains(":method: CONNECT", parsed, StringComparison.Ordinal);
            Assert.Contains($"forwarded: for=\"{rig.Mesh.ClientIp}:", parsed, StringComparison.Ordinal);
            Assert.Contains($"CONNECT {rig.AppEndPoint} HTTP/1.1", rig.Tinyproxy.Stdout + rig.Tinyproxy.Stderr, StringComparison.Ordinal);
            Assert.Equal(1, rig.App.Accepted);

            // Because nothing in that chain ends the tunnel on a FIN, end it with a reset: the agent must pass it on
            // as RST_STREAM, which is what makes nghttpx close the stream and write its access log line.
            socket.LingerState = new LingerOption(true, 0);
        }

        await TwoNodeMesh.EventuallyAsync(() => rig.NghttpxAccessLog().Contains($"\"CONNECT {rig.AppEndPoint} HTTP/2\" 200", StringComparison.Ordinal), "nghttpx access log line");
        await TwoNodeMesh.EventuallyAsync(() => rig.Mesh.AccessLogA.ToString().Contains("direction=\"outbound\"", StringComparison.Ordinal), "outbound access log");
        var line = rig.Mesh.AccessLogA.ToString();
        Assert.Contains($"dst.hbone_addr={rig.ProxyIp}:15008", line, StringComparison.Ordinal);
        Assert.Contains($"dst.identity=\"spiffe://cluster.local/ns/default/sa/{ProxyAccount}\"", line, StringComparison.Ordinal);
        Assert.Contains($"bytes_sent={payload.Length} ", line, StringComparison.Ordinal);
        Assert.Contains($"bytes_recv={payload.Length} ", line, StringComparison.Ordinal);
    }

    /// <summary>The same peer with a valid mesh certificate for the wrong identity: the agent must not tunnel to it.</summary>
    [RequiresToolsFact("nghttpx", "tinyproxy")]
    public async Task Outbound_refuses_an_hbone_peer_whose_certificate_names_another_identity()
    {
        await using var rig = await ForeignHbonePeer.StartAsync(serverAccount: "impostor");

        var (socket, reply) = await rig.Mesh.ConnectAsync(rig.AppEndPoint);
        socket.Dispose();

        Assert.NotEqual(0, reply);
        Assert.Equal(0, rig.App.Accepted);
        await TwoNodeMesh.EventuallyAsync(() => rig.Mesh.AccessLogA.ToString().Contains("impostor", StringComparison.Ordinal), "refusal naming the wrong identity");
        Assert.DoesNotContain("CONNECT", rig.NghttpxAccessLog(), StringComparison.Ordinal);
    }

    /// <summary>node-a's mesh plus a workload at 127.X.N.30 (the mesh's own subnet) served by nghttpx on :15008, tinyproxy on 127.X.N.31.</summary>
    private sealed class ForeignHbonePeer : IAsyncDisposable
    {
        private readonly List<IAsyncDisposable> _owned = [];
        private MeshPki? _pki;

        public TwoNodeMesh Mesh { get; private set; } = null!;
        public EchoServer App { get; private set; } = null!;
        public ExternalProcess Nghttpx { get; private set; } = null!;
        public ExternalProcess Tinyproxy { get; private set; } = null!;
        public IPAddress ProxyIp { get; private set; } = null!;
        public IPEndPoint AppEndPoint => App.EndPoint;
        private string Dir => _pki!.Directory;

        public string NghttpxAccessLog() => ReadShared(Path.Combine(Dir, "nghttpx-access.log"));

        public string NghttpxLog() => ReadShared(Path.Combine(Dir, "nghttpx-error.log")) + NghttpxAccessLog();

        public static async Task<ForeignHbonePeer> StartAsync(string serverAccount)
        {
            var rig = new ForeignHbonePeer();
            try
            {
                rig.Mesh = await TwoNodeMesh.StartAsync((m, c) =>
                {
                    rig.ProxyIp = new IPAddress([127, m.ClientIp.GetAddressBytes()[1], (byte)m.Subnet, 30]);
                    rig.App = new EchoServer(rig.ProxyIp);
                    return c with
                    {
                        Workloads = c.Workloads.Add(new Workload
                        {
                            Uid = "cluster1//v1/Pod/default/h2proxy",
                            Name = "h2proxy",
                            Namespace = "default",
                            ServiceAccount = ProxyAccount,
                            WorkloadIps = [rig.ProxyIp],
                            Protocol = InboundProtocol.Hbone,
                            // On a node with no agent of ours: whatever listens on its 15008 is the foreign peer.
                            Node = "node-c",
                        }),
                    };
                });
                rig._owned.Add(rig.App);
                rig._pki = MeshPki.Open(rig.Mesh.StateDir);
                var (cert, key) = rig._pki.Write("nghttpx", rig._pki.Issue(MeshPki.Id(serverAccount)));

                var tinyproxyAt = new IPEndPoint(new IPAddress([127, rig.Mesh.ClientIp.GetAddressBytes()[1], (byte)rig.Mesh.Subnet, 31]), 8888);
                var tinyConf = Path.Combine(rig.Dir, "tinyproxy.conf");
                // No Allow/ConnectPort lines: every client and every CONNECT port is allowed (tinyproxy's documented
                // default), which is what a backend behind an mTLS front end needs.
                await File.WriteAllTextAsync(tinyConf, $"""
                    Listen {tinyproxyAt.Address}
                    Port {tinyproxyAt.Port}
                    Timeout 60
                    MaxClients 50
                    LogLevel Connect
                    """);
                rig.Tinyproxy = ExternalProcess.Start("tinyproxy", ["-d", "-c", tinyConf]);
                rig._owned.Insert(0, rig.Tinyproxy);
                await WaitForListenerAsync(rig.Tinyproxy, tinyproxyAt);

                rig.Nghttpx = ExternalProcess.Start("nghttpx",
                [
                    "--http2-proxy",
                    "--single-process",
                    "--conf=/dev/null", // never pick up a host's /etc/nghttpx/nghttpx.conf
                    $"--frontend={rig.ProxyIp},15008",
                    $"--backend={tinyproxyAt.Address},{tinyproxyAt.Port}",
                    "--verify-client",
                    $"--verify-client-cacert={rig._pki.CaFile}",
                    "--tls-min-proto-version=TLSv1.3",
                    "--no-ocsp",
                    "--log-level=INFO", // prints each request as nghttpx decoded it
                    $"--accesslog-file={Path.Combine(rig.Dir, "nghttpx-access.log")}",
                    $"--errorlog-file={Path.Combine(rig.Dir, "nghttpx-error.log")}",
                    key,
                    cert,
                ]);
                rig._owned.Insert(0, rig.Nghttpx);
                await WaitForListenerAsync(rig.Nghttpx, new IPEndPoint(rig.ProxyIp, 15008));
                return rig;
            }
            catch
            {
                await rig.DisposeAsync();
                throw;
            }
        }

        private static async Task WaitForListenerAsync(ExternalProcess process, IPEndPoint endpoint)
        {
            var deadline = Environment.TickCount64 + 20_000;
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"{process.Name} exited ({process.ExitCode}): {process.Stdout} {process.Stderr}");
                }
                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await probe.ConnectAsync(endpoint).WaitAsync(TimeSpan.FromSeconds(5));
                    return;
                }
                catch (SocketException) when (Environment.TickCount64 < deadline)
                {
                    await Task.Delay(50);
                }
            }
        }

        private static string ReadShared(string path)
        {
            try
            {
                using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                return new StreamReader(f).ReadToEnd();
            }
            catch (FileNotFoundException)
            {
                return "";
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var d in _owned)
            {
                await d.DisposeAsync();
            }
            if (Mesh is not null)
            {
                await Mesh.DisposeAsync();
            }
            _pki?.Dispose();
        }
    }
}
