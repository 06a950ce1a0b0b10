using System.Net.Sockets;
using Ambient.Ztunnel.Sockets;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.InPod;

/// <summary>A pod handed over by the older agent with its listening sockets by port (15001, 15006, 15008); none when read from the registry.</summary>
internal sealed record HandedOverPod(CapturedPod Pod, IReadOnlyDictionary<int, Socket>? Listeners)
{
    /// <summary>A waypoint pod's CA endpoint (its one socket on 15012), not a captured pod.</summary>
    public bool CaEndpoint { get; init; }
}

/// <summary>
/// The newer agent's side of the listener hand-over (see <see cref="HandoverServer"/>): at start-up, if an agent still
/// runs on the node, take its pods with their listening sockets instead of binding new ones (which its sockets would
/// refuse: a port in use is never shared by accident, issue 13), and tell it to let go once this agent is ready.
/// </summary>
internal sealed class HandoverClient : IDisposable
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);
    private readonly Socket _socket;
    private readonly ILogger _logger;

    private HandoverClient(Socket socket, int pid, ILogger logger)
    {
        _socket = socket;
        PeerPid = pid;
        _logger = logger;
    }

    /// <summary>The older agent's process id.</summary>
    public int PeerPid { get; }

    /// <summary>
    /// True when an agent of this user listens on the hand-over socket (the connection is closed again at once, which
    /// that agent logs as a check, not a failed hand-over).
    /// </summary>
    public static bool PeerIsListening(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }
        using var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return UnixRights.Peer(socket).Uid == UnixRights.EffectiveUserId;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Connects to a running agent's hand-over socket; null when no agent listens there (none ever ran, or it crashed).</summary>
    public static HandoverClient? TryConnect(string path, ILogger logger)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            var (pid, uid) = UnixRights.Peer(socket);
            if (uid != UnixRights.EffectiveUserId)
            {
                InPodLog.HandoverForeignUid(logger, path, uid);
                socket.Dispose();
                return null;
            }
            return new HandoverClient(socket, pid, logger);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable or SocketError.AccessDenied)
        {
            // ECONNREFUSED: the file is left over from an agent that is gone.
            InPodLog.NoPreviousAgent(logger, path, ex.SocketErrorCode);
            socket.Dispose();
            return null;
        }
    }

    /// <summary>Asks for every pod; the sockets received belong to the caller (also when this throws: none are leaked).</summary>
    public async Task<List<HandedOverPod>> TakeOverAsync()
    {
        var pods = new List<HandedOverPod>();
        try
        {
            await HandoverWire.SendAsync(_socket, new HandoverMessage { Command = HandoverMessage.TakeOver }, StepTimeout).ConfigureAwait(false);
            while (true)
            {
                var received = await HandoverWire.ReceiveAsync(_socket, StepTimeout).ConfigureAwait(false)
                    ?? throw new IOException($"the agent with pid {PeerPid} closed the hand-over before it was done");
                var (message, fds) = received;
                switch (message.Command)
                {
                    case HandoverMessage.PodCommand:
                        pods.Add(Adopt(message, fds));
                        break;
                    case HandoverMessage.CaCommand:
                        pods.Add(Adopt(message, fds) with { CaEndpoint = true });
                        break;
                    case HandoverMessage.Done when message.Count == pods.Count(p => !p.CaEndpoint):
                        return pods;
                    case HandoverMessage.ErrorCommand:
                        throw new IOException($"the agent with pid {PeerPid} refused the hand-over: {message.Message}");
                    default:
                        Close(fds);
                        throw new IOException($"unexpected hand-over message {message.Command} (count {message.Count}, {pods.Count} pods received)");
                }
            }
        }
        catch
        {
            foreach (var p in pods)
            {
                foreach (var s in p.Listeners?.Values ?? [])
                {
                    s.Dispose();
                }
            }
            throw;
        }
    }

    /// <summary>Wraps the received descriptors, checking each is a listening TCP socket on the port the message names.</summary>
    private static HandedOverPod Adopt(HandoverMessage message, int[] fds)
    {
        var sockets = new List<Socket>();
        try
        {
            if (message.Pod is null || message.Ports is not { } ports || ports.Count != fds.Length)
            {
                throw new IOException($"hand-over message POD carries {fds.Length} sockets for ports [{string.Join(",", message.Ports ?? [])}]");
            }
            var byPort = new Dictionary<int, Socket>();
            for (int i = 0; i < fds.Length; i++)
            {
                var socket = new Socket(new SafeSocketHandle(fds[i], ownsHandle: true));
                fds[i] = -1;
                sockets.Add(socket);
                if (socket.SocketType != SocketType.Stream || socket.LocalEndPoint is not System.Net.IPEndPoint local || local.Port != ports[i]
                    || (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection)! == 0)
                {
                    throw new IOException($"descriptor {i} of pod {message.Pod.Namespace}/{message.Pod.Name} is not a TCP socket listening on port {ports[i]}");
                }
                byPort[ports[i]] = socket;
            }
            return new HandedOverPod(message.Pod, byPort);
        }
        catch
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
            Close(fds);
            throw;
        }
    }

    /// <summary>Tells the older agent this one is ready; it stops accepting for the pods and drains. Bounded wait for its answer.</summary>
    public async Task CompleteAsync()
    {
        try
        {
            await HandoverWire.SendAsync(_socket, new HandoverMessage { Command = HandoverMessage.ReadyCommand }, StepTimeout).ConfigureAwait(false);
            var answer = await HandoverWire.ReceiveAsync(_socket, StepTimeout).ConfigureAwait(false);
            if (answer is { } a)
            {
                Close(a.Fds);
            }
            if (answer?.Message.Command == HandoverMessage.Released)
            {
                InPodLog.PreviousReleased(_logger, PeerPid, answer.Value.Message.Count ?? 0);
            }
            else
            {
                InPodLog.PreviousUnconfirmed(_logger, PeerPid);
            }
        }
        catch (Exception ex) when (ex is IOException or TimeoutException or SocketException)
        {
            InPodLog.CompleteHandoverFailed(_logger, PeerPid, ex.Message);
        }
    }

    private static void Close(int[] fds)
    {
        foreach (int fd in fds)
        {
            if (fd >= 0)
            {
                UnixRights.Close(fd);
            }
        }
    }

    public void Dispose() => _socket.Dispose();
}
