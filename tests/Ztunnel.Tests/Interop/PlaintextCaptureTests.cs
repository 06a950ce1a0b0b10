using System.Net.Sockets;
using System.Text;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.Interop;

/// <summary>
/// Proves from the wire, not from the agent's own account, that tunnelled bytes never cross between nodes in clear
/// text: the same canary is captured on the app's plain port (so the capture works and the canary is findable)
/// and is absent from the capture of node-b's 15008.
/// </summary>
public sealed class PlaintextCaptureTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [RequiresToolsFact("tcpdump", NeedsRoot = true)]
    public async Task Payload_never_crosses_port_15008_in_plaintext_but_is_visible_on_the_app_port()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        var dir = Directory.CreateTempSubdirectory("ambient-pcap-").FullName;
        try
        {
            var hbonePcap = Path.Combine(dir, "hbone.pcap");
            var appPcap = Path.Combine(dir, "app.pcap");
            // -U: write each packet as it comes; -Z root: don't drop to the tcpdump user, who can't write our temp dir.
            await using var hbone = ExternalProcess.Start("tcpdump", ["-i", "lo", "-n", "-U", "-Z", "root", "-w", hbonePcap, $"host {mesh.ServerIp} and tcp port 15008"]);
            await using var app = ExternalProcess.Start("tcpdump", ["-i", "lo", "-n", "-U", "-Z", "root", "-w", appPcap, $"host {mesh.ServerIp} and tcp port {mesh.Echo.EndPoint.Port}"]);
            await hbone.WaitForOutputAsync(o => o.Contains("listening on", StringComparison.Ordinal), "capture on 15008 started", Timeout);
            await app.WaitForOutputAsync(o => o.Contains("listening on", StringComparison.Ordinal), "capture on the app port started", Timeout);

            var canary = "AMBIENT-CANARY-" + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
            var payload = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(canary + "\n", 64)));
            var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
            using (socket)
            {
                Assert.Equal(0, reply);
                await socket.SendAsync(payload, SocketFlags.None).WaitAsync(Timeout);
                socket.Shutdown(SocketShutdown.Send);
                Assert.Equal(payload, await Socks5Client.ReadToEndAsync(socket));
            }
            // The inbound side logs when its tunnel is over: every packet of it has crossed lo by then.
            await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogB.ToString().Contains("direction=\"inbound\"", StringComparison.Ordinal), "inbound tunnel complete");

            // tcpdump writes packets some time after the kernel hands them over. Rather than sleep, send a plaintext
            // marker through each filter last, and wait until it is in the file: pcap keeps packet order, so
            // everything before it is in the file too. (The marker sent to 15008 is garbage to the agent; it refuses it.)
            await FlushCaptureAsync(hbone, hbonePcap, new System.Net.IPEndPoint(mesh.ServerIp, 15008));
            await FlushCaptureAsync(app, appPcap, mesh.Echo.EndPoint);
            await hbone.InterruptAsync(Timeout);
            await app.InterruptAsync(Timeout);
            var hboneBytes = await File.ReadAllBytesAsync(hbonePcap);
            var appBytes = await File.ReadAllBytesAsync(appPcap);
            var needle = Encoding.ASCII.GetBytes(canary);

            // The control: on the app's plain TCP leg the canary is in the capture.
            Assert.True(appBytes.AsSpan().IndexOf(needle) >= 0, $"canary not found on the app port; tcpdump: {app.Stderr}");
            // The 15008 capture saw the whole tunnel (a TLS ClientHello record: handshake type 0x16, version 0x0301)...
            Assert.True(hboneBytes.AsSpan().IndexOf("\x16\x03\x01"u8) >= 0, $"no TLS handshake captured on 15008; tcpdump: {hbone.Stderr}");
            Assert.True(hboneBytes.Length > payload.Length, "the 15008 capture is smaller than the payload it should carry (encrypted)");
            // ...and never the canary.
            Assert.True(hboneBytes.AsSpan().IndexOf(needle) < 0, "canary crossed 15008 in plaintext");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task FlushCaptureAsync(ExternalProcess tcpdump, string pcap, System.Net.IPEndPoint through)
    {
        var marker = Encoding.ASCII.GetBytes("PCAP-FLUSH-" + Guid.NewGuid().ToString("N"));
        using (var s = new Socket(through.AddressFamily, SocketType.Stream, ProtocolType.Tcp))
        {
            await s.ConnectAsync(through).WaitAsync(Timeout);
            await s.SendAsync(marker, SocketFlags.None).WaitAsync(Timeout);
            var deadline = Environment.TickCount64 + (long)Timeout.TotalMilliseconds;
            while (ReadShared(pcap).AsSpan().IndexOf(marker) < 0)
            {
                Assert.True(Environment.TickCount64 < deadline && !tcpdump.HasExited, $"marker never reached {pcap}; tcpdump: {tcpdump.Stderr}");
                await Task.Delay(20);
            }
        }
    }

    private static byte[] ReadShared(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var ms = new MemoryStream();
        f.CopyTo(ms);
        return ms.ToArray();
    }
}
