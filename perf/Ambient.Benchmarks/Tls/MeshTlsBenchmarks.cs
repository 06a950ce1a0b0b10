using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Tls;
using BenchmarkDotNet.Attributes;

namespace Ambient.Benchmarks.Tls;

/// <summary>
/// The cost of a new HBONE connection's security: the TLS 1.3 mutual handshake (ECDSA P-256, ALPN h2, SAN
/// checks) over loopback, and the peer validation the server runs on the client's chain.
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet tears benchmarks down through [GlobalCleanup], which disposes it")]
public class MeshTlsBenchmarks
{
    private readonly string _stateDir = Directory.CreateTempSubdirectory("ambient-bench-ca").FullName;
    private CertificateAuthority _ca = null!;
    private WorkloadCertificate _client = null!;
    private WorkloadCertificate _server = null!;
    private Socket _listener = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _ca = CertificateAuthority.LoadOrCreate(null, null, _stateDir, "cluster.local");
        _client = await Issue(new SpiffeId("cluster.local", "web", "frontend"));
        _server = await Issue(new SpiffeId("cluster.local", "shop", "checkout"));
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _listener.Dispose();
        _ca.Dispose();
        Directory.Delete(_stateDir, recursive: true);
    }

    /// <summary>A full mutual TLS 1.3 handshake (connect included), as the first tunnel to a new peer pays it.</summary>
    [Benchmark]
    public async Task MutualHandshake()
    {
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await c.ConnectAsync(_listener.LocalEndPoint!);
        using Socket s = await _listener.AcceptAsync();
        await using var client = new SslStream(new NetworkStream(c));
        await using var server = new SslStream(new NetworkStream(s));
        await Task.WhenAll(
            client.AuthenticateAsClientAsync(MeshTls.ClientOptions(_client, [_server.Id.ToString()], _ca.TrustBundle)),
            server.AuthenticateAsServerAsync(MeshTls.ServerOptions(_server, _ca.TrustBundle, "cluster.local")));
    }

    [Benchmark]
    public bool ValidatePeer() => MeshTls.TryValidatePeer(_client.Leaf, _ca.TrustBundle, "cluster.local", out _, out _);

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
