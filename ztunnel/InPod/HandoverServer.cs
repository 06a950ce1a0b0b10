using System.Net.Sockets;
using Ambient.Ztunnel.Sockets;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// The older agent's side of the listener hand-over (issue 12): a newer agent on the same node (a DaemonSet rollout
/// with <c>maxSurge: 1</c> starts it next to this one) connects to <c>&lt;stateDir&gt;/handover.sock</c> and receives every
/// captured pod with the pod's listening sockets themselves. Both agents accept from those sockets until the newer one
/// is ready; then this one lets go of them without closing their backlog, stops taking CNI requests and drains.
/// No connection is refused or reset at any point: the kernel's listening sockets never close.
/// Only a peer running as this agent's own user is served (SO_PEERCRED); the socket file is 0600 as well.
/// </summary>
internal sealed class HandoverServer : IAsyncDisposable
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long the newer agent may take from receiving the sockets to being ready (binding, capture rules of every pod).</summary>
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(2);

    private readonly InPodManager _manager;
    private readonly Action<int> _handedOver;
    private readonly ILogger _logger;
    private readonly UnixSocketFile _file;
    private readonly Proxy.Listener _listener;

    /// <param name="handedOver">Called with the newer agent's pid once it has taken everything over: this agent should drain and exit.</param>
    public HandoverServer(string path, InPodManager manager, Action<int> handedOver, ILogger logger)
    {
        _manager = manager;
        _handedOver = handedOver;
        _logger = logger;
        _file = UnixSocketFile.BindReplacing(path, SocketType.Seqpacket);
        _listener = new Proxy.Listener("handover", _file.Socket, ServeAsync, logger);
        _listener.Start();
    }

    public string Path => _file.Path;

    private async Task ServeAsync(Socket s)
    {
        using (s)
        {
            int pid = 0;
            try
            {
                (pid, uint uid) = UnixRights.Peer(s);
                if (uid != UnixRights.EffectiveUserId)
                {
                    InPodLog.HandoverRefusedUid(_logger, pid, uid, UnixRights.EffectiveUserId);
                    return;
                }
                var request = await HandoverWire.ReceiveAsync(s, StepTimeout).ConfigureAwait(false);
                if (request is null)
                {
                    // Closed without a word: a newer agent checking that this one runs (it takes over once its own
                    // sources have synced, HandoverClient.PeerIsListening).
                    InPodLog.HandoverProbed(_logger, pid);
                    return;
                }
                if (request is not { } r || r.Message.Command != HandoverMessage.TakeOver || r.Fds.Length != 0)
                {
                    CloseAll(request?.Fds);
                    InPodLog.HandoverNotAsked(_logger, pid);
                    return;
                }
                await HandOverAsync(s, pid).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or TimeoutException or SocketException)
            {
                InPodLog.HandoverFailed(_logger, pid, ex.Message);
            }
        }
    }

    private async Task HandOverAsync(Socket s, int pid)
    {
        // Holds the manager's gate until the end: no pod is added or removed while two agents share the sockets.
        var set = await _manager.BeginHandoverAsync().ConfigureAwait(false);
        var pods = set?.Pods;
        bool committed = false;
        try
        {
            if (pods is null)
            {
                await HandoverWire.SendAsync(s, new HandoverMessage { Command = HandoverMessage.ErrorCommand, Message = "this agent has already handed its pods over" }, StepTimeout).ConfigureAwait(false);
                return;
            }
            InPodLog.HandingOver(_logger, pid, pods.Count);
            foreach (var (pod, listeners) in pods)
            {
                var message = new HandoverMessage { Command = HandoverMessage.PodCommand, Pod = pod, Ports = [.. listeners.Select(l => l.EndPoint.Port)] };
                await HandoverWire.SendAsync(s, message, StepTimeout, [.. listeners.Select(l => l.Socket)]).ConfigureAwait(false);
            }
            // After the pods, so an agent that does not know CA endpoints fails the hand-over (unknown command) and
            // re-adopts from the registry rather than taking a waypoint's socket for a captured pod's.
            foreach (var (pod, listener) in set!.CaEndpoints)
            {
                var message = new HandoverMessage { Command = HandoverMessage.CaCommand, Pod = pod, Ports = [listener.EndPoint.Port] };
                await HandoverWire.SendAsync(s, message, StepTimeout, [listener.Socket]).ConfigureAwait(false);
            }
            await HandoverWire.SendAsync(s, new HandoverMessage { Command = HandoverMessage.Done, Count = pods.Count }, StepTimeout).ConfigureAwait(false);
            var ready = await HandoverWire.ReceiveAsync(s, ReadyTimeout).ConfigureAwait(false);
            CloseAll(ready?.Fds);
            if (ready?.Message.Command != HandoverMessage.ReadyCommand)
            {
                InPodLog.NewerAgentGone(_logger, pid);
                return;
            }
            committed = true;
        }
        finally
        {
            await _manager.EndHandoverAsync(committed).ConfigureAwait(false);
        }
        InPodLog.HandedOver(_logger, pods.Count, pid);
        try
        {
            await HandoverWire.SendAsync(s, new HandoverMessage { Command = HandoverMessage.Released, Count = pods.Count }, StepTimeout).ConfigureAwait(false);
        }
        finally
        {
            _handedOver(pid);
        }
    }

    private static void CloseAll(int[]? fds)
    {
        foreach (int fd in fds ?? [])
        {
            UnixRights.Close(fd);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _listener.DisposeAsync().ConfigureAwait(false);
        _file.Release(_logger, "hand-over");
    }
}
