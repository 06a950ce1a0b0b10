using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// The unix socket the CNI plugin calls (cni-plugin/PROTOCOL.md): one JSON line in, one JSON line out, per
/// connection. The socket file is root-only (0600) in a directory only root can write.
/// </summary>
internal sealed class CniServer : IAsyncDisposable
{
    private const int MaxRequestBytes = 64 * 1024;
    private readonly Proxy.Listener _listener;
    private readonly InPodManager _manager;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly UnixSocketFile _file;

    public CniServer(string path, InPodManager manager, ILogger logger)
    {
        Path = path;
        _manager = manager;
        _logger = logger;
        // A newer agent may replace the path while this one drains; choosing between two live agents on purpose
        // is the hand-over (ListenerHandover).
        _file = UnixSocketFile.BindReplacing(path, SocketType.Stream);
        _listener = new Proxy.Listener("cni", _file.Socket, ServeAsync, logger);
        _listener.Start();
    }

    public string Path { get; }

    private async Task ServeAsync(Socket s)
    {
        using (s)
        {
            CniResponse response;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(60));
                var line = await ReadLineAsync(s, timeout.Token).ConfigureAwait(false);
                if (line is null)
                {
                    return;
                }
                CniRequest? request;
                try
                {
                    request = JsonSerializer.Deserialize(line, InPodJson.Default.CniRequest);
                }
                catch (JsonException ex)
                {
                    request = null;
                    InPodLog.BadRequest(_logger, ex.Message);
                }
                response = request is null
                    ? CniResponse.Error("request is not a JSON object")
                    : await _manager.HandleAsync(request, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex) when (ex is SocketException or IOException)
            {
                InPodLog.ClientGone(_logger, ex.Message);
                return;
            }
            try
            {
                var bytes = JsonSerializer.SerializeToUtf8Bytes(response, InPodJson.Default.CniResponse);
                await s.SendAsync(bytes, SocketFlags.None).ConfigureAwait(false);
                await s.SendAsync("\n"u8.ToArray(), SocketFlags.None).ConfigureAwait(false);
            }
            catch (SocketException)
            {
            }
        }
    }

    private static async Task<byte[]?> ReadLineAsync(Socket s, CancellationToken ct)
    {
        var buf = new byte[MaxRequestBytes];
        int len = 0;
        while (len < buf.Length)
        {
            int n = await s.ReceiveAsync(buf.AsMemory(len), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                return len == 0 ? null : buf[..len];
            }
            int nl = Array.IndexOf(buf, (byte)'\n', len, n);
            len += n;
            if (nl >= 0)
            {
                return buf[..nl];
            }
        }
        throw new IOException($"CNI request longer than {MaxRequestBytes} bytes");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _listener.DisposeAsync().ConfigureAwait(false);
        _file.Release(_logger, "CNI");
        _stop.Dispose();
    }
}
