using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Ambient.Benchmarks.Columns;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Tls;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Benchmarks.Tls;

/// <summary>
/// One HBONE tunnel's bulk throughput as the agents run it: HTTP/2 DATA over TLS 1.3 (mTLS, AES-GCM by OpenSSL)
/// over loopback, end to end (the operation ends when the receiver has read every byte). <see cref="Coalesce"/>
/// compares a plain socket stream under SslStream with <see cref="WriteCoalescingStream"/>.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(MiBPerSecondColumn.Config))]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet tears benchmarks down through [GlobalCleanup], which disposes it")]
public class HboneTlsStreamBenchmarks
{
    public const int MiBPerOperation = 64;
    private const long BytesPerOperation = MiBPerOperation * 1024L * 1024L;
    private readonly string _stateDir = Directory.CreateTempSubdirectory("ambient-bench-tls").FullName;
    private readonly byte[] _chunk = new byte[64 * 1024];
    private CertificateAuthority _ca = null!;
    private Http2Connection _client = null!;
    private Http2Connection _server = null!;
    private Http2Stream _stream = null!;
    private readonly SemaphoreSlim _received = new(0);
    private long _sinkBytes;

    [Params(false, true)]
    public bool Coalesce { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        _ca = CertificateAuthority.LoadOrCreate(null, null, _stateDir, "cluster.local");
        var clientCert = await Issue(new SpiffeId("cluster.local", "shop", "frontend"));
        var serverCert = await Issue(new SpiffeId("cluster.local", "shop", "web"));
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await c.ConnectAsync(listener.LocalEndPoint!);
        var s = await listener.AcceptAsync();
        s.NoDelay = true;
        var ct = new WriteCoalescingStream(c);
        var st = new WriteCoalescingStream(s);
        var clientTls = new SslStream(ct);
        var serverTls = new SslStream(st);
        await Task.WhenAll(
            clientTls.AuthenticateAsClientAsync(MeshTls.ClientOptions(clientCert, [serverCert.Id.ToString()], _ca.TrustBundle)),
            serverTls.AuthenticateAsServerAsync(MeshTls.ServerOptions(serverCert, _ca.TrustBundle, "cluster.local")));
        ct.Coalesce = Coalesce;
        st.Coalesce = Coalesce;
        var options = new Http2Options();
        _server = Http2Connection.CreateServer(serverTls, options, OnStream, NullLogger.Instance);
        _client = Http2Connection.CreateClient(clientTls, options, NullLogger.Instance);
        _server.Start();
        _client.Start();
        _stream = await _client.OpenStreamAsync([new(":method", "CONNECT"), new(":authority", "10.0.0.1:80")], CancellationToken.None);
        var response = await _stream.ReadResponseHeadersAsync(CancellationToken.None);
        if (response.Status != 200)
        {
            throw new InvalidOperationException($"CONNECT answered {response.Status}");
        }
    }

    private async Task OnStream(Http2Stream stream)
    {
        await stream.SendResponseHeadersAsync(200, null, endStream: false, CancellationToken.None);
        while (true)
        {
            var result = await stream.Input.ReadAsync();
            long n = result.Buffer.Length;
            stream.Input.AdvanceTo(result.Buffer.End);
            if ((_sinkBytes += n) >= BytesPerOperation)
            {
                _sinkBytes -= BytesPerOperation;
                _received.Release();
            }
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    [Benchmark(OperationsPerInvoke = MiBPerOperation)]
    public async Task TunnelData()
    {
        for (long sent = 0; sent < BytesPerOperation; sent += _chunk.Length)
        {
            await _stream.WriteAsync(_chunk, CancellationToken.None);
        }
        await _received.WaitAsync();
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _client.DisposeAsync();
        await _server.DisposeAsync();
        _ca.Dispose();
        _received.Dispose();
        Directory.Delete(_stateDir, recursive: true);
    }

    private async Task<WorkloadCertificate> Issue(SpiffeId id)
    {
        IssuedCertificate issued = await _ca.IssueAsync(id, TimeSpan.FromHours(24), CancellationToken.None);
        return new WorkloadCertificate
        {
            Id = id,
            Leaf = issued.Leaf,
            Intermediates = issued.Intermediates,
            Context = SslStreamCertificateContext.Create(issued.Leaf, issued.Intermediates),
        };
    }
}
