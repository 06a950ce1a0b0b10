using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using Ambient.Ztunnel.Sockets;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// One message of the listener hand-over between two agents on a node (issue 12): a JSON object per SOCK_SEQPACKET
/// message, a pod's listening sockets attached to its message as SCM_RIGHTS. The exchange, newer agent first:
/// <c>TAKEOVER</c> → (<c>POD</c> + 3 descriptors)* (<c>CA</c> + 1 descriptor)* <c>DONE</c> → <c>READY</c> → <c>RELEASED</c>
/// (<c>CA</c>: a waypoint pod's CA endpoint on 15012, see <see cref="InPodManager.PodCaPort"/>; DONE counts the pods only). Until READY the older
/// agent keeps serving (both accept from the same sockets); a connection that ends before READY leaves it the owner.
/// </summary>
internal sealed record HandoverMessage
{
    public const int ProtocolVersion = 1;
    public const string TakeOver = "TAKEOVER";
    public const string PodCommand = "POD";
    public const string CaCommand = "CA";
    public const string Done = "DONE";
    public const string ReadyCommand = "READY";
    public const string Released = "RELEASED";
    public const string ErrorCommand = "ERROR";

    [JsonPropertyName("version")]
    public int Version { get; init; } = ProtocolVersion;

    [JsonPropertyName("command")]
    public required string Command { get; init; }

    [JsonPropertyName("pod")]
    public CapturedPod? Pod { get; init; }

    /// <summary>POD: the port of each attached listening socket, in order (15001, 15006, 15008).</summary>
    [JsonPropertyName("ports")]
    public List<int>? Ports { get; init; }

    /// <summary>DONE and RELEASED: how many pods.</summary>
    [JsonPropertyName("count")]
    public int? Count { get; init; }

    [JsonPropertyName("message")]
    public string? Message { get; init; }
}

/// <summary>Sending and receiving <see cref="HandoverMessage"/>s, bounded in time; the blocking calls run off the I/O threads.</summary>
internal static class HandoverWire
{
    private const int MaxMessageBytes = 64 * 1024;

    public static Task SendAsync(Socket socket, HandoverMessage message, TimeSpan timeout, IReadOnlyList<Socket>? attach = null)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(message, InPodJson.Default.HandoverMessage);
        int[] fds = attach is null ? [] : [.. attach.Select(s => (int)s.SafeHandle.DangerousGetHandle())];
        return Task.Run(() => UnixRights.Send(socket, bytes, fds, timeout));
    }

    /// <summary>The next message and its descriptors (the caller owns them), or null when the peer closed the connection.</summary>
    public static Task<(HandoverMessage Message, int[] Fds)?> ReceiveAsync(Socket socket, TimeSpan timeout) => Task.Run<(HandoverMessage, int[])?>(() =>
    {
        var buf = new byte[MaxMessageBytes];
        var (n, fds) = UnixRights.Receive(socket, buf, timeout);
        if (n == 0 && fds.Length == 0)
        {
            return null;
        }
        try
        {
            var message = JsonSerializer.Deserialize(buf.AsSpan(0, n), InPodJson.Default.HandoverMessage)
                ?? throw new IOException("hand-over message is not a JSON object");
            if (message.Version != HandoverMessage.ProtocolVersion)
            {
                throw new IOException($"hand-over protocol version {message.Version}, this agent speaks {HandoverMessage.ProtocolVersion}");
            }
            return (message, fds);
        }
        catch (Exception ex) when (ex is JsonException or IOException)
        {
            foreach (int fd in fds)
            {
                UnixRights.Close(fd);
            }
            throw ex as IOException ?? new IOException($"hand-over message is not valid: {ex.Message}", ex);
        }
    });
}
