using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Ambient.Daemonset.Tests.Support;

/// <summary>
/// Stands in for the Kubernetes API server the installer asks about its DaemonSet: HTTPS on 127.0.0.1 with a
/// self-signed certificate (written as the CA file), one request per connection, answers chosen by the test.
/// </summary>
internal sealed class FakeApiServer : IAsyncDisposable
{
    private static readonly TimeSpan IoTimeout = TimeSpan.FromSeconds(10);
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly X509Certificate2 _certificate;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;

    public FakeApiServer(string dir)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=fake-kube-apiserver", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        _certificate = X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
        CaFile = Path.Combine(dir, "ca.crt");
        File.WriteAllText(CaFile, cert.ExportCertificatePem());
        TokenFile = Path.Combine(dir, "token");
        File.WriteAllText(TokenFile, "test-token-123\n");
        _listener.Start();
        _accept = AcceptAsync();
    }

    public string CaFile { get; }

    public string TokenFile { get; }

    public string Url => $"https://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Status and JSON body for a request path.</summary>
    public Func<string, (int Status, string Body)> Respond { get; set; } = _ => (200, DaemonSet(deleting: false));

    /// <summary>Every request line and its Authorization header, in order.</summary>
    public ConcurrentQueue<(string RequestLine, string? Authorization)> Requests { get; } = new();

    public static string DaemonSet(bool deleting) => deleting
        ? """{"kind":"DaemonSet","apiVersion":"apps/v1","metadata":{"name":"ambient-cni","namespace":"ambient-system","deletionTimestamp":"2026-01-01T00:00:00Z"}}"""
        : """{"kind":"DaemonSet","apiVersion":"apps/v1","metadata":{"name":"ambient-cni","namespace":"ambient-system"}}""";

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(IoTimeout);
        try
        {
            await using var tls = new SslStream(client.GetStream());
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate }, timeout.Token);
            var head = new StringBuilder();
            var buffer = new byte[4096];
            while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                int n = await tls.ReadAsync(buffer, timeout.Token);
                if (n == 0)
                {
                    return;
                }

                head.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            string[] lines = head.ToString().Split("\r\n");
            string? auth = lines.FirstOrDefault(l => l.StartsWith("Authorization:", StringComparison.OrdinalIgnoreCase))?["Authorization:".Length..].Trim();
            Requests.Enqueue((lines[0], auth));
            string path = lines[0].Split(' ')[1];
            var (status, body) = Respond(path);
            byte[] content = Encoding.UTF8.GetBytes(body);
            string response = $"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {content.Length}\r\nConnection: close\r\n\r\n";
            await tls.WriteAsync(Encoding.ASCII.GetBytes(response), timeout.Token);
            await tls.WriteAsync(content, timeout.Token);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            // The client went away; nothing to serve.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accept.WaitAsync(IoTimeout);
        _certificate.Dispose();
        _stop.Dispose();
    }
}
