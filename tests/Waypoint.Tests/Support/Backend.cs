using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Tests.Support;

/// <summary>
/// An application pod's HTTP server on a loopback address: answers every request with what it received, one
/// "key: value" per line (its name, method, path, host, and every request header), so a test sees what the waypoint
/// forwarded. <c>/status/NNN</c> answers that status. HTTP/1.1 and h2c on the same port.
/// </summary>
internal sealed class Backend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private Backend(WebApplication app, string name, IPEndPoint endpoint)
    {
        _app = app;
        Name = name;
        EndPoint = endpoint;
    }

    public string Name { get; }

    /// <summary>A test's own behaviour, run first: true means it answered (fail on demand, hold a request...).</summary>
    public Func<HttpContext, Task<bool>>? Script { get; set; }

    public IPEndPoint EndPoint { get; }

    public static async Task<Backend> StartAsync(string name, IPAddress address)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? listen = null;
        builder.WebHost.ConfigureKestrel(k => k.Listen(address, 0, l =>
        {
            l.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1AndHttp2;
            listen = l;
        }));
        var app = builder.Build();
        Backend? self = null;
        app.Run(async context =>
        {
            if (self?.Script is { } script && await script(context))
            {
                return;
            }
            var req = context.Request;
            if (req.Path.StartsWithSegments("/status", out var rest) && int.TryParse(rest.Value?.Trim('/'), out int status))
            {
                context.Response.StatusCode = status;
            }
            using var body = new MemoryStream();
            await req.Body.CopyToAsync(body);
            var sb = new StringBuilder();
            sb.Append("backend: ").Append(name).Append('\n');
            sb.Append("method: ").Append(req.Method).Append('\n');
            sb.Append("path: ").Append(req.Path).Append(req.QueryString).Append('\n');
            sb.Append("protocol: ").Append(req.Protocol).Append('\n');
            sb.Append("host: ").Append(req.Host).Append('\n');
            sb.Append("body-bytes: ").Append(body.Length).Append('\n');
            foreach (var (k, v) in req.Headers)
            {
                sb.Append("h-").Append(k.ToLowerInvariant()).Append(": ").Append(v.ToString()).Append('\n');
            }
            context.Response.Headers["x-backend"] = name;
            await context.Response.WriteAsync(sb.ToString());
        });
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(20));
        self = new Backend(app, name, listen!.IPEndPoint!);
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }
        await _app.DisposeAsync();
    }
}
