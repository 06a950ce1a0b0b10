using System.Collections.Concurrent;
using Ambient.Mesh.Policy;
using Ambient.Ztunnel.Telemetry;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// Every live proxied connection, so the agent can close the ones a policy change now denies, and drain on
/// shutdown: wait for connections to finish, then close what is left at the deadline. Drain also waits for accepted
/// connections whose handler is still running (a SOCKS5 or TLS handshake, an upstream connect): they were accepted
/// before the listeners closed and are served to completion within the deadline, not reset by the exit (issue 13).
/// </summary>
internal sealed class ConnectionTracker
{
    private readonly ConcurrentDictionary<long, Tracked> _live = new();
    private long _next;
    private int _handlers;
    private TaskCompletionSource? _emptied;

    public int Count => _live.Count;

    /// <summary>Accepted connections whose handler has not returned yet (handshakes, connects; HBONE connections).</summary>
    public int Handlers => Volatile.Read(ref _handlers);

    public void HandlerStarted() => Interlocked.Increment(ref _handlers);

    public void HandlerEnded()
    {
        if (Interlocked.Decrement(ref _handlers) == 0 && _live.IsEmpty)
        {
            Volatile.Read(ref _emptied)?.TrySetResult();
        }
    }

    private bool Idle => _live.IsEmpty && Volatile.Read(ref _handlers) == 0;

    public Tracked Register(ConnectionRecord record, string? destinationUid = null, ConnectionInfo? policyInput = null)
    {
        var t = new Tracked(this, Interlocked.Increment(ref _next), record, destinationUid, policyInput);
        _live[t.Id] = t;
        return t;
    }

    public IEnumerable<Tracked> Live => _live.Values;

    private void Remove(Tracked t)
    {
        _live.TryRemove(t.Id, out _);
        if (Idle)
        {
            Volatile.Read(ref _emptied)?.TrySetResult();
        }
    }

    /// <summary>
    /// Waits until no connection is left and no handler runs, or <paramref name="deadline"/> passes; returns how many
    /// connections (tracked ones and running handlers) remain.
    /// </summary>
    public async Task<int> DrainAsync(TimeSpan deadline)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _emptied, tcs);
        if (!Idle)
        {
            await Task.WhenAny(tcs.Task, Task.Delay(deadline)).ConfigureAwait(false);
        }
        return _live.Count + Volatile.Read(ref _handlers);
    }

    public void CloseAll(string reason)
    {
        foreach (var t in _live.Values)
        {
            t.Close(reason);
        }
    }

    internal sealed class Tracked(ConnectionTracker owner, long id, ConnectionRecord record, string? destinationUid, ConnectionInfo? policyInput) : IDisposable
    {
        private Relay? _relay;
        private volatile bool _closed;

        public long Id { get; } = id;
        public ConnectionRecord Record { get; } = record;
        public string? DestinationUid { get; } = destinationUid;
        public ConnectionInfo? PolicyInput { get; } = policyInput;
        public string? CloseReason { get; private set; }

        /// <summary>The relay that <see cref="Close"/> stops; closed at once if the connection was closed before.</summary>
        public void Attach(Relay relay)
        {
            Volatile.Write(ref _relay, relay);
            if (_closed)
            {
                relay.CloseByAgent();
            }
        }

        public void Close(string reason)
        {
            CloseReason ??= reason;
            _closed = true;
            Volatile.Read(ref _relay)?.CloseByAgent();
        }

        /// <summary>The relay ended: log and count the connection as closed, then forget it.</summary>
        public void Finish(string? error, MeshMetrics metrics, AccessLog accessLog)
        {
            Record.Close(metrics, accessLog, CloseReason ?? error);
            Dispose();
        }

        public void Dispose() => owner.Remove(this);
    }
}
