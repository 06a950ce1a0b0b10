using System.Net;
using System.Net.Sockets;
using Ambient.Benchmarks.Columns;
using Ambient.Ztunnel.Proxy;
using Ambient.Ztunnel.Telemetry;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Proxy;

/// <summary>
/// The plaintext tunnel copy loop, <see cref="Relay.SocketToSocketAsync"/>, over loopback TCP:
/// app -> [client socket | relay | upstream socket] -> sink. The relay runs for the whole benchmark (set up once,
/// as a long-lived connection is); each operation pushes <see cref="MiBPerOperation"/> MiB through it and waits
/// until the sink, which discards, has read them all. <c>OperationsPerInvoke</c> makes one reported operation one
/// MiB, so Mean is time per MiB, Allocated is bytes per MiB and the MiB/s column is the throughput.
/// <see cref="LoopbackDirect"/> moves the same bytes over one loopback connection with no relay: the ceiling
/// (the relay path crosses loopback twice, so about half of it is the best the relay can do).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(MiBPerSecondColumn.Config))]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet tears benchmarks down through [GlobalCleanup], which disposes it")]
public class RelayBenchmarks
{
    public const int MiBPerOperation = 64;
    private const long BytesPerOperation = MiBPerOperation * 1024L * 1024L;
    /// <summary>The size of one application write and one sink read.</summary>
    private const int ChunkSize = 64 * 1024;

    private readonly byte[] _sendBuffer = new byte[ChunkSize];
    private readonly byte[] _receiveBuffer = new byte[ChunkSize];
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _sockets = [];
    private Socket _relayApp = null!;
    private Socket _relaySink = null!;
    private Socket _directApp = null!;
    private Socket _directSink = null!;
    private ConnectionRecord _record = null!;
    private Task<string?> _relay = null!;

    [GlobalSetup]
    public void Setup()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(8);
        (_relayApp, Socket relayClient) = Pair(listener);
        (Socket relayUpstream, _relaySink) = Pair(listener);
        (_directApp, _directSink) = Pair(listener);

        // As Outbound does for a plaintext upstream: the record is opened (labels resolved, counters bound)
        // before the copy starts, so the loop pays the per-chunk counter updates it pays in the agent.
        _record = new ConnectionRecord("outbound", (IPEndPoint)_relayApp.LocalEndPoint!);
        _record.Open(new MeshMetrics());
        _relay = Relay.SocketToSocketAsync(relayClient, relayUpstream, _record, _stop.Token);

        RelayCopy().GetAwaiter().GetResult();
        if (_record.BytesReceived != BytesPerOperation)
        {
            throw new InvalidOperationException($"relay counted {_record.BytesReceived} bytes, expected {BytesPerOperation}");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop.Cancel();
        if (!_relay.Wait(TimeSpan.FromSeconds(10)))
        {
            throw new InvalidOperationException("the relay did not stop within 10 s of cancellation");
        }
        foreach (Socket s in _sockets)
        {
            s.Dispose();
        }
        _stop.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = MiBPerOperation)]
    public Task LoopbackDirect() => TransferAsync(_directApp, _directSink);

    [Benchmark(OperationsPerInvoke = MiBPerOperation)]
    public Task RelayCopy() => TransferAsync(_relayApp, _relaySink);

    private async Task TransferAsync(Socket source, Socket sink)
    {
        Task send = SendAsync(source);
        long received = 0;
        while (received < BytesPerOperation)
        {
            int n = await sink.ReceiveAsync(_receiveBuffer.AsMemory(), SocketFlags.None).ConfigureAwait(false);
            if (n == 0)
            {
                throw new InvalidOperationException($"the connection closed after {received} of {BytesPerOperation} bytes");
            }
            received += n;
        }
        await send.ConfigureAwait(false);
    }

    private async Task SendAsync(Socket socket)
    {
        long sent = 0;
        while (sent < BytesPerOperation)
        {
            int n = (int)Math.Min(ChunkSize, BytesPerOperation - sent);
            sent += await socket.SendAsync(_sendBuffer.AsMemory(0, n), SocketFlags.None).ConfigureAwait(false);
        }
    }

    private (Socket Connecting, Socket Accepted) Pair(Socket listener)
    {
        var connecting = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        connecting.Connect(listener.LocalEndPoint!);
        Socket accepted = listener.Accept();
        accepted.NoDelay = true;
        _sockets.Add(connecting);
        _sockets.Add(accepted);
        return (connecting, accepted);
    }
}
