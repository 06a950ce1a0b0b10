using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Http2.Hpack;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.BadInput;

/// <summary>One HTTP/2 frame as it crossed the wire.</summary>
internal sealed record RawFrame(byte Type, byte Flags, int StreamId, byte[] Payload)
{
    public const byte Data = 0x0, Headers = 0x1, RstStream = 0x3, Settings = 0x4, Ping = 0x6, GoAway = 0x7, WindowUpdate = 0x8, Continuation = 0x9;
    public const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4;

    /// <summary>The error code of a RST_STREAM or GOAWAY.</summary>
    public Http2ErrorCode ErrorCode => Type switch
    {
        RstStream => (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Payload),
        GoAway => (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Payload.AsSpan(4)),
        _ => throw new InvalidOperationException($"frame type {Type} carries no error code"),
    };

    public bool Has(byte flag) => (Flags & flag) != 0;

    public override string ToString() => Type is RstStream or GoAway
        ? $"type={Type} stream={StreamId} code={ErrorCode}"
        : $"type={Type} flags=0x{Flags:x2} stream={StreamId} length={Payload.Length}";
}

/// <summary>
/// A deliberately dumb HTTP/2 client over TLS: it writes whatever frames a test hands it, byte for byte, so a test can
/// send what no real client library would (bad prefaces, oversized lengths, broken HPACK). It encodes request headers
/// itself (HPACK literals, no Huffman, no indexing) and only borrows the product's decoder to read the agent's
/// responses, which is not what these tests are about.
/// </summary>
internal sealed class RawHttp2Client : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);
    public static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    private readonly Socket _socket;
    private readonly SslStream _ssl;
    private readonly HpackDecoder _decoder = new(4096);
    private readonly byte[] _header = new byte[9];

    // A test may write while a reader task acks SETTINGS: SslStream allows one writer at a time.
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    private RawHttp2Client(Socket socket, SslStream ssl)
    {
        _socket = socket;
        _ssl = ssl;
    }

    /// <summary>The server's SETTINGS, once <see cref="HandshakeAsync"/> has read them.</summary>
    public Dictionary<ushort, uint> ServerSettings { get; } = [];

    /// <summary>Why reading stopped: "eof", or the exception that ended it.</summary>
    public string? ClosedBy { get; private set; }

    public int MaxFrameSize => ServerSettings.TryGetValue(0x5, out var v) ? (int)v : 16_384;

    /// <summary>
    /// TLS 1.3 with ALPN <paramref name="alpn"/> (h2 by default) and an optional client certificate; the server's chain
    /// must end in <paramref name="meshRoot"/> (its URI SAN is not checked: these tests are about what the server accepts).
    /// </summary>
    public static async Task<RawHttp2Client> ConnectAsync(IPEndPoint endpoint, X509Certificate2 meshRoot, X509Certificate2? clientCertificate, string alpn = "h2")
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(TestAddresses.Loopback(endpoint)).WaitAsync(Timeout);
            var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
            var client = new RawHttp2Client(socket, ssl);
            var options = new SslClientAuthenticationOptions
            {
                TargetHost = "",
                EnabledSslProtocols = SslProtocols.Tls13,
                ApplicationProtocols = [new SslApplicationProtocol(alpn)],
                RemoteCertificateValidationCallback = (_, certificate, _, _) => ChainsTo(certificate, meshRoot),
                ClientCertificateContext = clientCertificate is null ? null : SslStreamCertificateContext.Create(clientCertificate, null, offline: true),
            };
            try
            {
                await ssl.AuthenticateAsClientAsync(options).WaitAsync(Timeout);
            }
            catch
            {
                await client.DisposeAsync();
                throw;
            }
            return client;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static bool ChainsTo(X509Certificate? certificate, X509Certificate2 root)
    {
        if (certificate is null)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(leaf);
    }

    /// <summary>Sends the preface and an empty SETTINGS, then reads the server's SETTINGS (acking it).</summary>
    public async Task HandshakeAsync()
    {
        await WriteRawAsync(Preface.ToArray());
        await WriteFrameAsync(RawFrame.Settings, 0, 0, []);
        var first = await ReadFrameAsync() ?? throw new IOException($"server closed before its SETTINGS ({ClosedBy})");
        Assert.Equal(RawFrame.Settings, first.Type);
    }

    public async Task WriteRawAsync(byte[] bytes)
    {
        await _writeLock.WaitAsync(Timeout);
        try
        {
            await _ssl.WriteAsync(bytes).AsTask().WaitAsync(Timeout);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public Task WriteFrameAsync(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload, int? declaredLength = null) =>
        WriteRawAsync(Frame(type, flags, streamId, payload, declaredLength));

    /// <summary>Encodes one frame; <paramref name="declaredLength"/> lets a test lie about the payload length.</summary>
    public static byte[] Frame(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload, int? declaredLength = null)
    {
        var frame = new byte[9 + payload.Length];
        int length = declaredLength ?? payload.Length;
        frame[0] = (byte)(length >> 16);
        frame[1] = (byte)(length >> 8);
        frame[2] = (byte)length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), streamId & 0x7FFFFFFF);
        payload.CopyTo(frame.AsSpan(9));
        return frame;
    }

    public static byte[] RstStream(int streamId, Http2ErrorCode code)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)code);
        return Frame(RawFrame.RstStream, 0, streamId, payload);
    }

    /// <summary>A CONNECT request's header block (HPACK, RFC 7541 6.2.2 literals without indexing).</summary>
    public static byte[] ConnectHeaders(IPEndPoint target, params (string Name, string Value)[] extra)
    {
        var block = new MemoryStream();
        Literal(block, ":method", "CONNECT");
        Literal(block, ":authority", target.ToString());
        foreach (var (name, value) in extra)
        {
            Literal(block, name, value);
        }
        return block.ToArray();
    }

    private static void Literal(MemoryStream block, string name, string value)
    {
        block.WriteByte(0x00); // literal without indexing, new name
        String(block, name);
        String(block, value);
    }

    private static void String(MemoryStream block, string s)
    {
        var bytes = Encoding.ASCII.GetBytes(s);
        Integer(block, bytes.Length, 7, 0x00); // H=0: raw octets
        block.Write(bytes);
    }

    /// <summary>RFC 7541 5.1 prefixed integer.</summary>
    private static void Integer(MemoryStream block, int value, int prefixBits, byte firstByteFlags)
    {
        int max = (1 << prefixBits) - 1;
        if (value < max)
        {
            block.WriteByte((byte)(firstByteFlags | value));
            return;
        }
        block.WriteByte((byte)(firstByteFlags | max));
        value -= max;
        while (value >= 128)
        {
            block.WriteByte((byte)(value % 128 + 128));
            value /= 128;
        }
        block.WriteByte((byte)value);
    }

    /// <summary>Opens a CONNECT stream (HEADERS with END_HEADERS, no END_STREAM).</summary>
    public Task OpenConnectAsync(int streamId, IPEndPoint target) =>
        // The agent dials the target for us.
        WriteFrameAsync(RawFrame.Headers, RawFrame.EndHeaders, streamId, ConnectHeaders(TestAddresses.Loopback(target)));

    /// <summary>Reads one frame; null when the connection ended (see <see cref="ClosedBy"/>). SETTINGS are acked.</summary>
    public async Task<RawFrame?> ReadFrameAsync()
    {
        try
        {
            if (!await ReadExactlyAsync(_header))
            {
                return null;
            }
            int length = (_header[0] << 16) | (_header[1] << 8) | _header[2];
            var payload = new byte[length];
            if (!await ReadExactlyAsync(payload))
            {
                return null;
            }
            var frame = new RawFrame(_header[3], _header[4], BinaryPrimitives.ReadInt32BigEndian(_header.AsSpan(5)) & 0x7FFFFFFF, payload);
            if (frame.Type == RawFrame.Settings && !frame.Has(RawFrame.Ack))
            {
                for (int i = 0; i + 6 <= payload.Length; i += 6)
                {
                    ServerSettings[BinaryPrimitives.ReadUInt16BigEndian(payload.AsSpan(i))] = BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(i + 2));
                }
                await WriteFrameAsync(RawFrame.Settings, RawFrame.Ack, 0, []);
            }
            return frame;
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException or ObjectDisposedException or SocketException)
        {
            ClosedBy ??= ex.GetType().Name + ": " + ex.Message;
            return null;
        }
    }

    /// <summary>Reads until GOAWAY or the end of the connection; every frame before it goes to <paramref name="seen"/>.</summary>
    public async Task<RawFrame?> ReadUntilGoAwayAsync(List<RawFrame>? seen = null)
    {
        while (await ReadFrameAsync() is { } frame)
        {
            if (frame.Type == RawFrame.GoAway)
            {
                return frame;
            }
            seen?.Add(frame);
        }
        return null;
    }

    /// <summary>True once the server has closed the connection (EOF or reset) after everything it sent was read.</summary>
    public async Task<bool> ReadsToEndAsync()
    {
        while (await ReadFrameAsync() is not null)
        {
        }
        return true;
    }

    /// <summary>The :status in a response HEADERS frame (END_HEADERS, no CONTINUATION: the agent's responses are tiny).</summary>
    public int Status(RawFrame headers)
    {
        Assert.Equal(RawFrame.Headers, headers.Type);
        var fields = new List<HeaderField>();
        _decoder.Decode(headers.Payload, fields, 64 * 1024);
        return int.Parse(fields.Single(f => f.Name == ":status").Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<bool> ReadExactlyAsync(byte[] buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await _ssl.ReadAsync(buffer.AsMemory(read)).AsTask().WaitAsync(Timeout);
            if (n == 0)
            {
                ClosedBy ??= "eof";
                return false;
            }
            read += n;
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _ssl.DisposeAsync();
        _socket.Dispose();
        _writeLock.Dispose();
    }
}
