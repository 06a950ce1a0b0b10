using System.Buffers;
using System.Net.Sockets;
using System.Text.Json;

namespace Ambient.Cni;

internal enum AgentCallStatus
{
    /// <summary>The agent answered with a well-formed response.</summary>
    Answered,

    /// <summary>No answer: no socket, refused, reset, closed early or timed out. The enrollment file decides.</summary>
    Unreachable,

    /// <summary>The agent answered something protocol version 1 does not allow.</summary>
    ProtocolError,
}

internal readonly record struct AgentCallResult(AgentCallStatus Status, AgentResponse? Response, string? Failure)
{
    public static AgentCallResult Unreachable(string why) => new(AgentCallStatus.Unreachable, null, why);
    public static AgentCallResult Invalid(string why) => new(AgentCallStatus.ProtocolError, null, why);
}

/// <summary>
/// One request/response exchange with the node agent over its unix socket (PROTOCOL.md). Reports the
/// outcome instead of throwing: every command decides for itself what an unreachable agent means.
/// </summary>
internal sealed class AgentClient(string socketPath, TimeSpan timeout)
{
    // A response is one short status line; anything longer is a broken or hostile peer.
    internal const int MaxResponseBytes = 64 * 1024;

    public string SocketPath { get; } = socketPath;

    public async Task<AgentCallResult> SendAsync(AgentRequest request, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        string stage = "connect";
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), deadline.Token);

            stage = "send";
            byte[] line = JsonContext.ToLine(request, JsonContext.Default.AgentRequest);
            await socket.SendAsync(line, SocketFlags.None, deadline.Token);

            stage = "receive";
            return await ReadResponseAsync(socket, deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return AgentCallResult.Unreachable($"no answer from {SocketPath} within {timeout.TotalSeconds:0.###}s ({stage})");
        }
        catch (SocketException ex)
        {
            return AgentCallResult.Unreachable($"{stage} {SocketPath}: {Describe(ex)}");
        }
    }

    private async Task<AgentCallResult> ReadResponseAsync(Socket socket, CancellationToken cancellationToken)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            int filled = 0;
            while (true)
            {
                if (filled == buffer.Length)
                {
                    if (buffer.Length >= MaxResponseBytes)
                    {
                        return AgentCallResult.Invalid($"response from {SocketPath} exceeds {MaxResponseBytes} bytes without a newline");
                    }

                    byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, MaxResponseBytes));
                    buffer.AsSpan(0, filled).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                int read = await socket.ReceiveAsync(buffer.AsMemory(filled, Math.Min(buffer.Length, MaxResponseBytes) - filled), SocketFlags.None, cancellationToken);
                if (read == 0)
                {
                    // Closed before a full line: the agent died or dropped us mid-request; nothing was decided.
                    return AgentCallResult.Unreachable(filled == 0
                        ? $"{SocketPath} closed the connection without answering"
                        : $"{SocketPath} closed the connection in the middle of its answer");
                }

                int newline = buffer.AsSpan(filled, read).IndexOf((byte)'\n');
                filled += read;
                if (newline >= 0)
                {
                    return Decode(buffer.AsSpan(0, filled - read + newline));
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private AgentCallResult Decode(ReadOnlySpan<byte> line)
    {
        AgentResponse? response;
        try
        {
            response = JsonSerializer.Deserialize(line, JsonContext.Default.AgentResponse);
        }
        catch (JsonException)
        {
            return AgentCallResult.Invalid($"response from {SocketPath} is not a JSON object");
        }

        if (response?.Status is not { } status)
        {
            return AgentCallResult.Invalid($"response from {SocketPath} has no status");
        }

        return status is AgentStatus.Captured or AgentStatus.NotEnrolled or AgentStatus.Removed or AgentStatus.Ready or AgentStatus.Error
            ? new AgentCallResult(AgentCallStatus.Answered, response, null)
            : AgentCallResult.Invalid($"response from {SocketPath} has unknown status \"{status}\"");
    }

    private static string Describe(SocketException ex) => ex.SocketErrorCode switch
    {
        // ENOENT surfaces as AddressNotAvailable for unix sockets.
        SocketError.AddressNotAvailable => "socket file does not exist (is the ambient agent running on this node?)",
        SocketError.ConnectionRefused => "connection refused (the agent is not listening)",
        SocketError.AccessDenied => "permission denied",
        SocketError.ConnectionReset => "connection reset by the agent",
        _ => ex.Message,
    };
}
