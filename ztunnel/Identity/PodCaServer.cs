using System.Buffers;
using System.Buffers.Binary;
using System.Formats.Asn1;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Ambient.Mesh.Http2;
using Ambient.Mesh.Identity;
using Ambient.Ztunnel.Telemetry;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Identity;

/// <summary>
/// Istio's CA API (<c>istio.v1.auth.IstioCertificateService/CreateCertificate</c>, gRPC over HTTP/2 cleartext) for
/// one waypoint pod, served on a listener the agent opened on the loopback of that pod's own network namespace
/// (<see cref="InPod.InPodManager"/>). Whoever connects is inside that namespace, so it is the pod: the agent learnt
/// the namespace from the CNI plugin when the runtime created the pod. No token and no server certificate are needed
/// (the channel never leaves the pod, like a unix socket), and the pod can be given nothing but its own identity,
/// <c>spiffe://&lt;td&gt;/ns/&lt;pod ns&gt;/sa/&lt;pod's service account&gt;</c>: a CSR that asks for anything else is
/// refused with PERMISSION_DENIED. The answer is the chain Istio's CA returns: leaf, intermediates, root last, so the
/// waypoint learns the mesh root from it.
/// </summary>
internal sealed class PodCaServer : IAsyncDisposable
{
    public const string Method = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

    /// <summary>A CSR and its metadata are a few hundred bytes; anything near this is not a CSR.</summary>
    private const int MaxRequestBytes = 64 * 1024;

    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
    private static readonly Http2Options Options = new()
    {
        InitialStreamWindowSize = MaxRequestBytes,
        InitialConnectionWindowSize = 4 * MaxRequestBytes,
        MaxFrameSize = 16 * 1024,
        MaxConcurrentStreams = 4,
    };

    private readonly CertificateAuthority _ca;
    private readonly Func<SpiffeId?> _identity;
    private readonly string _pod;
    private readonly TimeSpan _maxLifetime;
    private readonly MeshMetrics _metrics;
    private readonly ILogger _logger;
    // Never disposed: a connection the listener accepted from its backlog while closing may still register on it.
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2213", Justification = "late connections may still register on it")]
    private readonly CancellationTokenSource _closing = new();

    /// <param name="identity">The one identity the pod may hold, asked afresh per call; null = none (the pod is no longer a waypoint).</param>
    /// <param name="pod">namespace/name, for logs.</param>
    public PodCaServer(CertificateAuthority ca, Func<SpiffeId?> identity, string pod, TimeSpan maxLifetime, MeshMetrics metrics, ILogger logger)
    {
        _ca = ca;
        _identity = identity;
        _pod = pod;
        _maxLifetime = maxLifetime;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>Serves one accepted connection until the client closes it or this server is disposed (GOAWAY).</summary>
    public async Task ServeAsync(Socket socket)
    {
        var transport = new NetworkStream(socket, ownsSocket: true);
        var connection = Http2Connection.CreateServer(transport, Options, HandleAsync, _logger);
        await using (connection.ConfigureAwait(false))
        {
            connection.Start();
            using (_closing.Token.UnsafeRegister(static c => _ = ((Http2Connection)c!).ShutdownAsync().AsTask(), connection))
            {
                await connection.Completion.ConfigureAwait(false);
            }
        }
    }

    private async Task HandleAsync(Http2Stream stream)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_closing.Token);
        timeout.CancelAfter(RequestTimeout);
        try
        {
            var (code, message, chain) = await AnswerAsync(stream, timeout.Token).ConfigureAwait(false);
            if (chain is null)
            {
                // Trailers-only response (the gRPC spec's form for a call that fails before any message).
                await stream.SendResponseHeadersAsync(200, [new("content-type", "application/grpc"), new("grpc-status", code.ToString(System.Globalization.CultureInfo.InvariantCulture)), new("grpc-message", PercentEncode(message))], endStream: true, timeout.Token).ConfigureAwait(false);
                return;
            }
            byte[] body = chain;
            byte[] frame = new byte[5 + body.Length];
            BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), body.Length);
            body.CopyTo(frame, 5);
            await stream.SendResponseHeadersAsync(200, [new("content-type", "application/grpc")], endStream: false, timeout.Token).ConfigureAwait(false);
            await stream.WriteAsync(frame, timeout.Token).ConfigureAwait(false);
            await stream.SendTrailersAsync([new("grpc-status", "0")], timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or Http2StreamException or InvalidOperationException)
        {
            // The client went away, took too long or the agent is stopping: nothing to answer.
            stream.Reset(Http2ErrorCode.Cancel);
        }
    }

    private async Task<(int Code, string Message, byte[]? Chain)> AnswerAsync(Http2Stream stream, CancellationToken ct)
    {
        string? method = null, path = null, contentType = null;
        foreach (HeaderField h in stream.RequestHeaders)
        {
            switch (h.Name)
            {
                case ":method": method = h.Value; break;
                case ":path": path = h.Value; break;
                case "content-type": contentType = h.Value; break;
            }
        }
        if (method != "POST" || contentType is null || !contentType.StartsWith("application/grpc", StringComparison.Ordinal))
        {
            return Invalid(GrpcCode.Unimplemented, "this endpoint serves gRPC only (istio.v1.auth.IstioCertificateService)");
        }
        if (path != Method)
        {
            return Invalid(GrpcCode.Unimplemented, $"unknown method {path}; this endpoint serves {Method} only");
        }
        byte[]? payload = await ReadMessageAsync(stream.Input, ct).ConfigureAwait(false);
        if (payload is null)
        {
            return Invalid(GrpcCode.InvalidArgument, "the request is not one uncompressed gRPC message");
        }
        IstioCaRequest request;
        try
        {
            request = IstioCaMessages.ParseRequest(payload);
        }
        catch (FormatException ex)
        {
            return Invalid(GrpcCode.InvalidArgument, ex.Message);
        }
        if (_identity() is not { } allowed)
        {
            return Denied("this pod is no longer a waypoint: it may hold no mesh identity");
        }
        CertificateRequest csr;
        try
        {
            // The CSR's own signature is checked (the requester holds the key it asks a certificate for). Its extensions
            // are read only to check the SAN asked for: the leaf is built afresh from the public key, nothing is copied.
            csr = CertificateRequest.LoadSigningRequestPem(request.Csr, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            return Invalid(GrpcCode.InvalidArgument, $"the csr is not a valid PEM certificate signing request: {ex.Message}");
        }
        if (RequestedUri(csr, out string? problem) is not { } asked)
        {
            return Denied($"the csr must name exactly {allowed} as its one URI SAN and nothing else: {problem}");
        }
        if (asked != allowed.ToString())
        {
            return Denied($"the csr asks for {asked}; this pod may only hold {allowed}");
        }
        if (request.ImpersonatedIdentity is { } impersonated && impersonated != allowed.ToString())
        {
            return Denied($"impersonating {impersonated} is not allowed; this pod may only hold {allowed}");
        }
        TimeSpan lifetime = request.ValidityDurationSeconds > 0 && request.ValidityDurationSeconds < _maxLifetime.TotalSeconds
            ? TimeSpan.FromSeconds(request.ValidityDurationSeconds)
            : _maxLifetime;
        // The keys a mesh peer's TLS accepts: ECDSA (what Istio's agents and ours make) or RSA.
        if (csr.PublicKey.Oid.Value is not ("1.2.840.10045.2.1" or "1.2.840.113549.1.1.1"))
        {
            return Invalid(GrpcCode.InvalidArgument, $"the csr's key is {csr.PublicKey.Oid.FriendlyName ?? csr.PublicKey.Oid.Value}; an ECDSA or RSA key is required");
        }
        IReadOnlyList<X509Certificate2> chain;
        try
        {
            chain = _ca.IssueForKey(csr.PublicKey, allowed, lifetime);
        }
        catch (CryptographicException ex)
        {
            return Invalid(GrpcCode.InvalidArgument, $"cannot sign the csr's key: {ex.Message}");
        }
        byte[] response = IstioCaMessages.EncodeResponse(chain.Select(c => c.ExportCertificatePem() + "\n"));
        _metrics.PodCaRequest("signed");
        PodCaLog.Signed(_logger, allowed.ToString(), _pod, chain[0].NotAfter.ToUniversalTime());
        chain[0].Dispose();
        return (0, "", response);
    }

    private (int, string, byte[]?) Denied(string reason)
    {
        _metrics.PodCaRequest("denied");
        PodCaLog.Refused(_logger, _pod, reason);
        return (GrpcCode.PermissionDenied, reason, null);
    }

    private (int, string, byte[]?) Invalid(int code, string reason)
    {
        _metrics.PodCaRequest("invalid");
        PodCaLog.Refused(_logger, _pod, reason);
        return (code, reason, null);
    }

    /// <summary>The whole request body as one gRPC message (flag 0, 4-byte length), or null when it is anything else or too large.</summary>
    private static async Task<byte[]?> ReadMessageAsync(PipeReader input, CancellationToken ct)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync(ct).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = read.Buffer;
            if (buffer.Length > MaxRequestBytes)
            {
                input.AdvanceTo(buffer.End);
                return null;
            }
            if (!read.IsCompleted)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }
            byte[] all = buffer.ToArray();
            input.AdvanceTo(buffer.End);
            if (all.Length < 5 || all[0] != 0 || BinaryPrimitives.ReadInt32BigEndian(all.AsSpan(1)) != all.Length - 5)
            {
                return null;
            }
            return all[5..];
        }
    }

    /// <summary>
    /// The one URI the CSR's subjectAltName holds, or null (with why) when it holds none, several, or names of another
    /// kind: a certificate must never carry a DNS name or IP the pod was not given.
    /// </summary>
    private static string? RequestedUri(CertificateRequest csr, out string? problem)
    {
        if (!SpiffeSan.TryReadNames(csr.CertificateExtensions, out var uris, out int others, out string? why))
        {
            problem = $"it {why}";
            return null;
        }
        problem = (uris.Count, others) switch
        {
            (0, 0) => "its subjectAltName holds no URI",
            (1, 0) => null,
            _ => "its subjectAltName holds more than one name",
        };
        return problem is null ? uris[0] : null;
    }

    /// <summary>grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2, "Responses").</summary>
    private static string PercentEncode(string message)
    {
        var sb = new StringBuilder(message.Length);
        foreach (byte b in Encoding.UTF8.GetBytes(message))
        {
            if (b is >= 0x20 and <= 0x7E and not (byte)'%')
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return sb.ToString();
    }

    /// <summary>Closes every connection (GOAWAY): the pod went away or stopped being a waypoint, or the agent stops.</summary>
    public async ValueTask DisposeAsync() => await _closing.CancelAsync().ConfigureAwait(false);

    private static class GrpcCode
    {
        public const int InvalidArgument = 3;
        public const int PermissionDenied = 7;
        public const int Unimplemented = 12;
    }
}
