using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Tests.ControlPlane.Support;

/// <summary>
/// The Kestrel + Grpc.AspNetCore host the fake control planes share: HTTP/2 on an ephemeral loopback port, cleartext
/// or TLS with a given certificate, no logging, a one-second shutdown.
/// </summary>
internal sealed class GrpcTestHost : IAsyncDisposable
{
    private WebApplication? _app;

    private GrpcTestHost(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public Uri Url { get; }

    /// <param name="services">Registers the server object and its gRPC service types.</param>
    /// <param name="map">Maps the gRPC services.</param>
    /// <param name="serverCertificate">Serve https with this certificate; null = HTTP/2 cleartext.</param>
    public static async Task<GrpcTestHost> StartAsync(Action<IServiceCollection> services, Action<WebApplication> map, X509Certificate2? serverCertificate = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http2;
            if (serverCertificate is not null)
            {
                l.UseHttps(serverCertificate);
            }
        }));
        builder.WebHost.UseShutdownTimeout(TimeSpan.FromSeconds(1));
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        services(builder.Services);
        WebApplication app = builder.Build();
        map(app);
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        int port = new Uri(app.Urls.First()).Port;
        return new GrpcTestHost(app, new Uri($"{(serverCertificate is null ? "http" : "https")}://127.0.0.1:{port}"));
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _app, null) is { } app)
        {
            await app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await app.DisposeAsync();
        }
    }
}
