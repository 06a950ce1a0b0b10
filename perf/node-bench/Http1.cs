using System.Net.Sockets;
using System.Text;

namespace Ambient.NodeBench;

/// <summary>
/// Just enough HTTP/1.1 for a load test: fixed-size messages framed by Content-Length. Parsing is by hand so the
/// tools cost little CPU on a 2-core VM where the load tool competes with the proxies being measured.
/// </summary>
internal sealed class Http1Reader
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;

    public Http1Reader(Socket socket) => _socket = socket;

    /// <summary>Reads one message; returns false on EOF before a complete message. Sets <paramref name="close"/>
    /// when the peer asked for "Connection: close".</summary>
    public async ValueTask<(bool Ok, bool Close)> ReadMessageAsync(CancellationToken ct)
    {
        while (true)
        {
            int headerEnd = IndexOfHeaderEnd(_buffer.AsSpan(_start, _end - _start));
            if (headerEnd >= 0)
            {
                var head = _buffer.AsSpan(_start, headerEnd);
                int bodyLength = ContentLength(head);
                bool close = head.IndexOf("Connection: close"u8) >= 0;
                int total = headerEnd + 4 + bodyLength;
                while (_end - _start < total)
                {
                    if (!await FillAsync(ct))
                    {
                        return (false, close);
                    }
                }
                _start += total;
                if (_start == _end)
                {
                    _start = _end = 0;
                }
                return (true, close);
            }
            if (!await FillAsync(ct))
            {
                return (false, false);
            }
        }
    }

    private async ValueTask<bool> FillAsync(CancellationToken ct)
    {
        if (_end == _buffer.Length)
        {
            // Compact: the messages are far smaller than the buffer, so this only moves a partial message.
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        int n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct);
        _end += n;
        return n > 0;
    }

    private static int IndexOfHeaderEnd(ReadOnlySpan<byte> data) => data.IndexOf("\r\n\r\n"u8);

    private static int ContentLength(ReadOnlySpan<byte> head)
    {
        int i = head.IndexOf("Content-Length: "u8);
        if (i < 0)
        {
            return 0;
        }
        int value = 0;
        for (int j = i + 16; j < head.Length && head[j] >= '0' && head[j] <= '9'; j++)
        {
            value = (value * 10) + (head[j] - '0');
        }
        return value;
    }
}

internal static class Http1
{
    /// <summary>A request or response with a body of <paramref name="size"/> bytes, built once and sent as is.</summary>
    public static byte[] Message(string startLine, int size, bool close)
    {
        string head = $"{startLine}\r\nHost: bench\r\nContent-Length: {size}\r\n{(close ? "Connection: close\r\n" : "")}\r\n";
        var bytes = new byte[Encoding.ASCII.GetByteCount(head) + size];
        int n = Encoding.ASCII.GetBytes(head, bytes);
        bytes.AsSpan(n).Fill((byte)'x');
        return bytes;
    }

    public static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            int n = await socket.SendAsync(data, SocketFlags.None, ct);
            data = data[n..];
        }
    }
}
