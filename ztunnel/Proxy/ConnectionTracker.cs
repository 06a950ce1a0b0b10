using System.Collections.Concurrent;
using Ambient.Mesh.Policy;
using Ambient.Ztunnel.Telemetry;

namespace Ambient.Ztunnel.Proxy;

/// <summary>
/// Every live proxied connection, so the agent can close the ones a policy change now denies, and drain on
/// shutdown: wait for connections to finish, then close what is left at the deadline.
/// </summary>
internal sealed class ConnectionTracker
{
    private readonly ConcurrentDictionary<long, Tracked> _live = new();
    private long _next;
    private TaskCompletionSource? _emptied;

    public int Count => _live.Count;

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
        if (_live.IsEmpty)
        {
            Volatile.Read(ref _emptied)?.TrySetResult();
        }
    }

    /// <summary>Waits until no connection is left or <paramref name="deadline"/> passes; returns how many remain.</summary>
    public async Task<int> DrainAsync(TimeSpan deadline)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _emptied, tcs);
        if (!_live.IsEmpty)
        {
            await Task.WhenAny(tcs.Task, Task.Delay(deadline)).ConfigureAwait(false);
        }
        return _live.Count;
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
