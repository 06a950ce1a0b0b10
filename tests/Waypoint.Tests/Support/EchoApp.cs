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
/// forwarded. <c>/status/NNN</c> answers that status, <c>/delay/MS</c> answers after MS milliseconds; a WebSocket upgrade gets an echo. HTTP/1.1 and h2c on the same port.
/// </summary>
internal sealed class EchoApp : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoApp(WebApplication app, string name, IPEndPoint endpoint, Counter inFlight)
    {
        _inFlight = inFlight;
        _app = app;
        Name = name;
        EndPoint = endpoint;
    }

    public string Name { get; }

    /// <summary>A test's own behaviour, run first: true means it answered (fail on demand, hold a request...).</summary>
    public Func<HttpContext, Task<bool>>? Script { get; set; }

    public IPEndPoint EndPoint { get; }

    /// <summary>Requests being answered now (a <c>/delay/MS</c> request counts while it waits).</summary>
    public int InFlight => Volatile.Read(ref _inFlight.Value);

    private readonly Counter _inFlight;

    private sealed class Counter
    {
        public int Value;
    }

    public static async Task<EchoApp> StartAsync(string name, IPAddress address)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? listen = null;
        var inFlight = new Counter();
        builder.WebHost.ConfigureKestrel(k => k.Listen(address, 0, l =>
        {
            l.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1AndHttp2;
            listen = l;
        }));
        var app = builder.Build();
        app.UseWebSockets();
        EchoApp? self = null;
        app.Run(async context =>
        {
            if (self?.Script is { } script && await script(context))
            {
                return;
            }
            var req = context.Request;
            if (context.WebSockets.IsWebSocketRequest)
            {
                // A WebSocket echo: every message comes back prefixed with the backend's name.
                using var ws = await context.WebSockets.AcceptWebSocketAsync();
                var buffer = new byte[4096];
                while (true)
                {
                    var message = await ws.ReceiveAsync(buffer, CancellationToken.None);
                    if (message.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
                    {
                        await ws.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                        return;
                    }
                    var reply = Encoding.UTF8.GetBytes($"{name}: {Encoding.UTF8.GetString(buffer, 0, message.Count)}");
                    await ws.SendAsync(reply, System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
                }
            }
            if (req.Path.StartsWithSegments("/status", out var rest) && int.TryParse(rest.Value?.Trim('/'), out int status))
            {
                context.Response.StatusCode = status;
            }
            if (req.Path.StartsWithSegments("/delay", out var delay) && int.TryParse(delay.Value?.Trim('/'), out int ms))
            {
                Interlocked.Increment(ref inFlight.Value);
                try
                {
                    await Task.Delay(ms);
                }
                finally
                {
                    Interlocked.Decrement(ref inFlight.Value);
                }
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
        self = new EchoApp(app, name, listen!.IPEndPoint!, inFlight);
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
