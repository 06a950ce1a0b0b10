using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Admin;

internal readonly record struct HttpRequest(string Method, string Path, string Query);

internal readonly record struct HttpResponse(int Status, string ContentType, string Body, Func<Socket, Task>? Stream = null)
{
    public static HttpResponse Text(int status, string body) => new(status, "text/plain; charset=utf-8", body);
    public static HttpResponse Json(string body) => new(200, "application/json", body);
}

/// <summary>
/// A deliberately small HTTP/1.1 server for the admin, metrics and readiness ports: GET/POST, no bodies, one request
/// per connection. These ports serve Prometheus and probes, not user traffic, so a full web stack would only add
/// start-up time and memory to every node.
/// </summary>
internal sealed class HttpEndpoint : IAsyncDisposable
{
    private const int MaxRequestBytes = 8192;
    private readonly Proxy.Listener _listener;
    private readonly Func<HttpRequest, ValueTask<HttpResponse>> _handler;
    private readonly ILogger _logger;

    /// <param name="name">The port's name in messages (admin, metrics, readiness).</param>
    /// <param name="listening">A socket bound and listening (<see cref="Proxy.Listener.BindNamed"/>); the endpoint owns it.</param>
    public HttpEndpoint(string name, Socket listening, Func<HttpRequest, ValueTask<HttpResponse>> handler, ILogger logger)
    {
        _handler = handler;
        _logger = logger;
        _listener = new Proxy.Listener(name, listening, ServeAsync, logger);
        _listener.Start();
    }

    public IPEndPoint EndPoint => _listener.EndPoint;

    private async Task ServeAsync(Socket s)
    {
        using (s)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                var buf = new byte[MaxRequestBytes];
                int len = 0;
                int end;
                while ((end = IndexOfHeaderEnd(buf.AsSpan(0, len))) < 0)
                {
                    if (len == buf.Length)
                    {
                        await SendAsync(s, HttpResponse.Text(431, "request header too large\n")).ConfigureAwait(false);
                        return;
                    }
                    int n = await s.ReceiveAsync(buf.AsMemory(len), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        return;
                    }
                    len += n;
                }
                string head = Encoding.ASCII.GetString(buf, 0, end);
                string requestLine = head.Split("\r\n", 2)[0];
                var parts = requestLine.Split(' ');
                if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
                {
                    await SendAsync(s, HttpResponse.Text(400, "bad request\n")).ConfigureAwait(false);
                    return;
                }
                string target = parts[1];
                int q = target.IndexOf('?', StringComparison.Ordinal);
                var request = new HttpRequest(parts[0], q < 0 ? target : target[..q], q < 0 ? "" : target[(q + 1)..]);
                HttpResponse response;
                try
                {
                    response = await _handler(request).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    AdminLog.HandlerFailed(_logger, ex, request.Path);
                    response = HttpResponse.Text(500, "internal error\n");
                }
                await SendAsync(s, response).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException)
            {
                // The client went away or stalled: nothing to answer.
            }
        }
    }

    private static int IndexOfHeaderEnd(ReadOnlySpan<byte> data) => data.IndexOf("\r\n\r\n"u8);

    private static async Task SendAsync(Socket s, HttpResponse r)
    {
        if (r.Stream is { } stream)
        {
            // Streamed bodies end with the connection (HTTP/1.1 allows it with Connection: close), so the body
            // never has to be built whole just to learn its length.
            string streamedHead = $"HTTP/1.1 {r.Status} {Reason(r.Status)}\r\nContent-Type: {r.ContentType}\r\nConnection: close\r\n\r\n";
            await s.SendAsync(Encoding.ASCII.GetBytes(streamedHead), SocketFlags.None).ConfigureAwait(false);
            await stream(s).ConfigureAwait(false);
            s.Shutdown(SocketShutdown.Send);
            return;
        }
        byte[] body = Encoding.UTF8.GetBytes(r.Body);
        string head = $"HTTP/1.1 {r.Status} {Reason(r.Status)}\r\nContent-Type: {r.ContentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        await s.SendAsync(Encoding.ASCII.GetBytes(head), SocketFlags.None).ConfigureAwait(false);
        await s.SendAsync(body, SocketFlags.None).ConfigureAwait(false);
        s.Shutdown(SocketShutdown.Send);
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };

    public ValueTask DisposeAsync() => _listener.DisposeAsync();
}
