using System.Buffers;
using System.IO.Pipelines;

namespace Ambient.Waypoint.Proxy;

/// <summary>What the first bytes of a tunnel say it carries.</summary>
internal enum SniffedProtocol
{
    /// <summary>An HTTP/1.x request line: Kestrel's HTTP/1.1 endpoint.</summary>
    Http1,

    /// <summary>The HTTP/2 connection preface (prior knowledge, h2c): Kestrel's HTTP/2 endpoint.</summary>
    Http2,

    /// <summary>Anything else, or nothing within the detection timeout: relayed as bytes with L4 policy.</summary>
    Tcp,
}

/// <summary>
/// Protocol detection for a tunnel whose port declares no protocol, as Istio does for such ports (Envoy's
/// <c>http_inspector</c>): the HTTP/2 preface means h2c; a complete HTTP/1.x request line (method token, SP, target,
/// SP, <c>HTTP/d.d</c>, LF) means HTTP/1; anything that cannot be either is TCP. Only peeks: every byte read stays in
/// the pipe (consumed nothing, examined nothing), so whichever path is chosen reads the stream from its first byte.
/// A client that sends nothing first (a server-first protocol: MySQL, SMTP...) gets TCP after the detection timeout,
/// so the server can speak; so does one that stops part way through something that could still be a request line
/// (Envoy continues with the non-HTTP chain when its listener filters time out).
/// </summary>
internal static class ProtocolSniffer
{
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    /// <summary>
    /// How long an undeclared port waits for the client's first bytes. Istio has used 100 ms and 5 s and now waits
    /// forever by default (server-first protocols then hang); 1 s lets a server-first protocol start without a
    /// noticeable stall while a client-first one practically always speaks well within it.
    /// </summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Bytes looked at before giving up on finding the request line's end. Kestrel's own request-line limit is 8 KiB;
    /// a longer line that still looks like a request goes to Kestrel, which refuses it with 414 rather than let it
    /// pass unparsed.
    /// </summary>
    internal const int MaxInspect = 8 * 1024;

    /// <summary>The verdict on the bytes seen so far, or null when more are needed.</summary>
    internal static SniffedProtocol? Classify(ReadOnlySpan<byte> head, bool declaredHttp = false)
    {
        if (head.IsEmpty)
        {
            return null;
        }
        int n = Math.Min(head.Length, Preface.Length);
        if (head[..n].SequenceEqual(Preface.AsSpan(0, n)))
        {
            // The preface's first line is also a syntactically valid HTTP/1 request line: decide on the whole preface.
            return n == Preface.Length ? SniffedProtocol.Http2 : null;
        }
        // A port declared HTTP only needs to know which HTTP: what is not the preface is Kestrel's HTTP/1.1 to parse.
        return declaredHttp ? SniffedProtocol.Http1 : ClassifyRequestLine(head);
    }

    /// <summary>
    /// Peeks at <paramref name="input"/> until <see cref="Classify"/> decides, the client ends its side, or
    /// <paramref name="timeout"/> passes. Consumes nothing. On a port declared HTTP (<paramref name="declaredHttp"/>)
    /// the answer is never TCP: only the HTTP version is told apart, and a client silent for the whole timeout gets an
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    public static async Task<SniffedProtocol> DetectAsync(PipeReader input, TimeSpan timeout, bool declaredHttp)
    {
        var fallback = declaredHttp ? SniffedProtocol.Http1 : SniffedProtocol.Tcp;
        using var cts = new CancellationTokenSource(timeout);
        byte[]? copy = null;
        try
        {
            while (true)
            {
                ReadResult result;
                try
                {
                    result = await input.ReadAsync(cts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cts.IsCancellationRequested && !declaredHttp)
                {
                    // Nothing decisive in time (the bytes already there stay unconsumed for the TCP relay). On a port
                    // declared HTTP the cancellation goes to the caller, which drops a client that never spoke.
                    return SniffedProtocol.Tcp;
                }
                var buffer = result.Buffer;
                var verdict = Classify(buffer.IsSingleSegment ? buffer.FirstSpan : Slice(buffer, ref copy), declaredHttp);
                if (verdict is null && buffer.Length >= MaxInspect)
                {
                    verdict = SniffedProtocol.Http1;
                }
                if (verdict is null && (result.IsCompleted || result.IsCanceled))
                {
                    // The client ended its side mid-way: something that began like a request is Kestrel's to refuse;
                    // a stream that ended empty is a TCP connection that only wants the server's side.
                    verdict = buffer.IsEmpty ? fallback : SniffedProtocol.Http1;
                }
                if (verdict is { } decided)
                {
                    input.AdvanceTo(buffer.Start, buffer.Start);
                    return decided;
                }
                // Keep everything, but wait for more than what was just examined.
                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        finally
        {
            if (copy is not null)
            {
                ArrayPool<byte>.Shared.Return(copy);
            }
        }
    }

    private static ReadOnlySpan<byte> Slice(ReadOnlySequence<byte> buffer, ref byte[]? copy)
    {
        int length = (int)Math.Min(buffer.Length, MaxInspect);
        copy ??= ArrayPool<byte>.Shared.Rent(MaxInspect);
        buffer.Slice(0, length).CopyTo(copy);
        return copy.AsSpan(0, length);
    }

    /// <summary>
    /// RFC 9112 section 3: <c>method SP request-target SP HTTP-version CRLF</c>. A bare LF also ends the line here, as
    /// in Envoy's inspector, so that Kestrel (which refuses bare LF) answers it rather than the bytes passing raw.
    /// </summary>
    private static SniffedProtocol? ClassifyRequestLine(ReadOnlySpan<byte> head)
    {
        int i = 0;
        while (i < head.Length && IsTokenChar(head[i]))
        {
            i++;
        }
        if (i == head.Length)
        {
            return null;
        }
        if (i == 0 || head[i] != (byte)' ')
        {
            return SniffedProtocol.Tcp;
        }
        int targetStart = ++i;
        while (i < head.Length && head[i] > 0x20 && head[i] != 0x7F)
        {
            i++;
        }
        if (i == head.Length)
        {
            return null;
        }
        if (i == targetStart || head[i] != (byte)' ')
        {
            return SniffedProtocol.Tcp;
        }
        i++;
        ReadOnlySpan<byte> version = "HTTP/d.d"u8;
        for (int v = 0; v < version.Length; v++, i++)
        {
            if (i == head.Length)
            {
                return null;
            }
            bool ok = version[v] == (byte)'d' ? char.IsAsciiDigit((char)head[i]) : head[i] == version[v];
            if (!ok)
            {
                return SniffedProtocol.Tcp;
            }
        }
        if (i < head.Length && head[i] == (byte)'\r')
        {
            i++;
        }
        if (i == head.Length)
        {
            return null;
        }
        return head[i] == (byte)'\n' ? SniffedProtocol.Http1 : SniffedProtocol.Tcp;
    }

    /// <summary>RFC 9110 tchar.</summary>
    private static bool IsTokenChar(byte b) =>
        char.IsAsciiLetterOrDigit((char)b) || b is (byte)'!' or (byte)'#' or (byte)'$' or (byte)'%' or (byte)'&' or (byte)'\''
            or (byte)'*' or (byte)'+' or (byte)'-' or (byte)'.' or (byte)'^' or (byte)'_' or (byte)'`' or (byte)'|' or (byte)'~';
}
