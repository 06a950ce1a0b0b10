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
    private readonly FileIdentity? _created;

    public CniServer(string path, InPodManager manager, ILogger logger)
    {
        Path = path;
        _manager = manager;
        _logger = logger;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        // Bound under a name of its own, then renamed over the path: the path always names a socket (a previous
        // agent's until the rename, stale after a crash or still draining, then ours), never nothing. It also keeps
        // .NET from unlinking the path when the listening socket is disposed (it deletes the name it bound), so the
        // path is removed only by DisposeAsync, and only while it is still ours. Choosing between two live agents
        // on purpose is issue 12's hand-over.
        string bound = TemporaryName(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            if (bound == path && File.Exists(path))
            {
                File.Delete(path); // no room for a temporary name (sun_path is 108 bytes): replace in two steps
            }
            socket.Bind(new UnixDomainSocketEndPoint(bound));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(bound, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            socket.Listen(64);
            _created = FileIdentity.Of(bound);
            if (bound != path)
            {
                File.Move(bound, path, overwrite: true);
            }
        }
        catch
        {
            socket.Dispose();
            if (bound != path)
            {
                File.Delete(bound);
            }
            throw;
        }
        _listener = new Proxy.Listener("cni", socket, ServeAsync, logger);
        _listener.Start();
    }

    public string Path { get; }

    private static int s_sequence;

    /// <summary>A short name beside <paramref name="path"/>, unique to this process and server; the path itself if it would not fit.</summary>
    private static string TemporaryName(string path)
    {
        string name = System.IO.Path.Combine(
            System.IO.Path.GetDirectoryName(path)!,
            $".cni{Environment.ProcessId:x}.{Interlocked.Increment(ref s_sequence):x}");
        return System.Text.Encoding.UTF8.GetByteCount(name) <= 107 ? name : path;
    }

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
        // Only the socket file this agent created: if another agent has bound the path since, it serves the plugin now.
        var current = FileIdentity.Of(Path);
        if (current is not null && current == _created)
        {
            try
            {
                File.Delete(Path);
            }
            catch (IOException)
            {
            }
        }
        else if (current is not null)
        {
            InPodLog.SocketTakenOver(_logger, Path);
        }
        _stop.Dispose();
    }
}
