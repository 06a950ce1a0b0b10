using System.Text;

namespace Ambient.Ztunnel.Tests.InPod.Support;

/// <summary>What crossed the wire: tcpdump's one-line summaries and the raw pcap bytes (payloads appear verbatim in them).</summary>
internal sealed record CapturedTraffic(IReadOnlyList<string> Packets, byte[] Pcap)
{
    public bool Contains(string plaintext) => Pcap.AsSpan().IndexOf(Encoding.ASCII.GetBytes(plaintext)) >= 0;

    /// <summary>Packets with neither end on <paramref name="port"/> (tcpdump -nn prints <c>a.b.c.d.port</c>).</summary>
    public IReadOnlyList<string> NotOnPort(int port) =>
        [.. Packets.Where(p => !p.Contains($".{port} ", StringComparison.Ordinal) && !p.Contains($".{port}:", StringComparison.Ordinal))];

    public string Summary(int max = 8) => $"{Packets.Count} packets:\n  {string.Join("\n  ", Packets.Take(max))}";
}

/// <summary>tcpdump on an interface of a namespace (the fabric between the nodes), started and stopped around the traffic of one test.</summary>
internal sealed class PacketCapture : IAsyncDisposable
{
    private readonly Daemon _tcpdump;
    private readonly string _file;

    private PacketCapture(Daemon tcpdump, string file)
    {
        _tcpdump = tcpdump;
        _file = file;
    }

    public static async Task<PacketCapture> StartAsync(string netns, string iface, string file)
    {
        // --immediate-mode: hand each packet over as it arrives rather than when the kernel's ring block fills or
        // times out (1 s), and -U: write it to the file at once; so everything sent before the stop is in the file.
        var d = Daemon.Start("tcpdump", "nsenter", [$"--net={netns}", "tcpdump", "--immediate-mode", "-i", iface, "-nn", "-U", "-w", file, "tcp"]);
        var capture = new PacketCapture(d, file);
        try
        {
            // tcpdump says so on stderr once the socket is bound: no packet after this line is missed.
            await d.WaitForLineAsync(l => l.Contains("listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(30), stderr: true);
            return capture;
        }
        catch
        {
            await capture.DisposeAsync();
            throw;
        }
    }

    public async Task<CapturedTraffic> StopAsync()
    {
        _tcpdump.Signal(Daemon.SigInt);
        if (!await _tcpdump.WaitForExitAsync(TimeSpan.FromSeconds(15)))
        {
            throw new TimeoutException($"tcpdump did not stop\n{_tcpdump.Describe()}");
        }
        var read = await Command.CheckAsync("tcpdump", ["-nn", "-r", _file], TimeSpan.FromSeconds(30));
        var packets = read.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return new CapturedTraffic(packets, await File.ReadAllBytesAsync(_file));
    }

    public ValueTask DisposeAsync() => _tcpdump.DisposeAsync();
}
