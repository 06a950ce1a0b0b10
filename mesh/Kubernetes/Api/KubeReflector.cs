using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>
/// Lists and watches one kind, keeping its objects in the shared <see cref="KubeObjectStore"/> (client-go's
/// reflector, minus the informer cache around it).
/// </summary>
/// <remarks>
/// <para>The loop: list (paged; the first list asks for <c>resourceVersion=0</c>, which the server answers from
/// its watch cache, as client-go does) and make the result the kind's whole content, so what was deleted while
/// nobody watched goes away. Then watch from the list's resourceVersion with bookmarks; each event, bookmarks
/// included, advances the version. A watch the server ends (its <c>timeoutSeconds</c>) is resumed from the last
/// version without a list. A 410 (the version was compacted: an ERROR event in the stream or the HTTP status)
/// means a fresh list; the re-list asks for a consistent read (no resourceVersion), as data older than what was
/// already seen must not come back.</para>
/// <para>Every other failure (server unreachable, 5xx, 401/403, a broken stream) keeps the objects held, records
/// the error for the status, and retries after a jittered exponential back-off, resuming the watch from the last
/// version. A 404 on a kind marked <see cref="KubeResource.Optional"/> means its CRD is not installed: its objects
/// (if any: the CRD was removed) go away, the kind counts as synced, and it is looked for again later.</para>
/// </remarks>
internal sealed class KubeReflector
{
    /// <summary>A watch that ends this fast with no event is a failure, not a timeout (client-go's rule).</summary>
    private static readonly TimeSpan ShortWatch = TimeSpan.FromSeconds(1);

    /// <summary>How long past its own timeoutSeconds a watch may stay silent before the client gives up on it.</summary>
    private static readonly TimeSpan WatchClientGrace = TimeSpan.FromSeconds(30);

    private readonly KubeWatch _watch;
    private readonly KubeConnection _connection;
    private readonly KubeObjectStore _store;
    private readonly KubernetesApiOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();

    private bool _hasSynced;
    private bool _missing;
    private bool _everListed;
    private DateTimeOffset? _lastSync;
    private DateTimeOffset? _lastEvent;
    private string _resourceVersion = "";
    private string? _error;
    private DateTimeOffset? _errorTime;
    private long _lists;
    private long _failures;
    private int _failureStreak;

    public KubeReflector(KubeWatch watch, KubeConnection connection, KubeObjectStore store, KubernetesApiOptions options, ILogger logger, TimeProvider time)
    {
        _watch = watch;
        _connection = connection;
        _store = store;
        _options = options;
        _logger = logger;
        _time = time;
    }

    public KubeWatch Watch => _watch;

    /// <summary>Completes when the first list finished, or the kind turned out not to be installed.</summary>
    public Task Synced => _synced.Task;

    public KubeKindStatus Status()
    {
        int count = _store.Count(_watch.Resource.Group, _watch.Resource.Kind);
        lock (_gate)
        {
            return new KubeKindStatus(_watch, _hasSynced, _missing, _lastSync, _lastEvent, count, _resourceVersion,
                _error, _errorTime, _lists, _failures);
        }
    }

    /// <summary>Runs until <paramref name="cancellationToken"/> fires; never throws.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        bool needList = true;
        int expiredInARow = 0;
        string version = "";
        while (!cancellationToken.IsCancellationRequested)
        {
            string operation = needList ? "list" : "watch";
            try
            {
                if (needList)
                {
                    // Two expiries with nothing in between: do not hammer a server that keeps answering 410.
                    if (expiredInARow > 1 && !await DelayAsync(Backoff(expiredInARow - 1), cancellationToken).ConfigureAwait(false))
                    {
                        break;
                    }
                    version = await ListAsync(cancellationToken).ConfigureAwait(false);
                    needList = false;
                }
                operation = "watch";
                WatchResult result = await WatchAsync(version, cancellationToken).ConfigureAwait(false);
                version = result.ResourceVersion;
                if (result.Expired)
                {
                    expiredInARow = result.Events == 0 ? expiredInARow + 1 : 1;
                    KubeApiLog.Expired(_logger, _watch, version);
                    needList = true;
                    continue;
                }
                expiredInARow = 0;
                if (result.Events == 0 && result.Duration < ShortWatch && !result.ClientDeadline)
                {
                    throw new IOException("the watch ended at once without any event");
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (KubeApiException e) when (e.IsGone)
            {
                expiredInARow++;
                KubeApiLog.Expired(_logger, _watch, version);
                needList = true;
            }
            catch (KubeApiException e) when (e.IsNotFound && _watch.Resource.Optional)
            {
                MarkMissing();
                needList = true;
                TimeSpan retry = _options.MissingKindRetry * (1 + (Random.Shared.NextDouble() / 2));
                if (!await DelayAsync(retry, cancellationToken).ConfigureAwait(false))
                {
                    break;
                }
            }
            catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException or JsonException
                or InvalidDataException or OperationCanceledException)
            {
                // OperationCanceledException here is a request timeout (the caller's token did not fire).
                TimeSpan delay = Failed(operation, e is OperationCanceledException ? $"{operation} timed out" : Describe(e));
                if (!await DelayAsync(delay, cancellationToken).ConfigureAwait(false))
                {
                    break;
                }
            }
            catch (Exception e)
            {
                // A bug, not the server: say so loudly, keep the state, try again.
                TimeSpan delay = Failed(operation, e.Message);
                KubeApiLog.LoopFailed(_logger, e, _watch, delay);
                if (!await DelayAsync(delay, cancellationToken).ConfigureAwait(false))
                {
                    break;
                }
            }
        }
        _synced.TrySetCanceled(cancellationToken);
    }

    private async Task<string> ListAsync(CancellationToken cancellationToken)
    {
        var objects = new List<KubeObject>();
        string? continueToken = null;
        string version = "";
        bool consistent = _everListed;
        do
        {
            var query = new StringBuilder(_watch.Resource.CollectionPath).Append("?limit=").Append(_options.ListPageSize);
            if (continueToken is not null)
            {
                // A continued list reads at the first page's version; naming one is refused.
                query.Append("&continue=").Append(Uri.EscapeDataString(continueToken));
            }
            else if (!consistent)
            {
                query.Append("&resourceVersion=0");
            }
            AppendSelectors(query);

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.ListTimeout);
            YamlMappingNode list;
            using (HttpResponseMessage response = await _connection.GetAsync(query.ToString(), timeout.Token).ConfigureAwait(false))
            {
                Succeeded();
                byte[] body = await ReadBoundedAsync(response, timeout.Token).ConfigureAwait(false);
                list = KubeJson.ParseObject(body);
            }
            if (KubeJson.Child(list, "metadata") is YamlMappingNode metadata)
            {
                version = KubeJson.Scalar(metadata, "resourceVersion") ?? version;
                continueToken = KubeJson.Scalar(metadata, "continue") is { Length: > 0 } c ? c : null;
            }
            else
            {
                continueToken = null;
            }
            if (KubeJson.Child(list, "items") is YamlSequenceNode items)
            {
                foreach (YamlNode item in items)
                {
                    if (ToObject(item) is KubeObject obj)
                    {
                        objects.Add(obj);
                    }
                }
            }
        }
        while (continueToken is not null);

        if (version.Length == 0)
        {
            throw new InvalidDataException("the list has no metadata.resourceVersion to watch from");
        }
        (int upserted, int removed) = _store.Replace(_watch.Resource.Group, _watch.Resource.Kind, objects);
        KubeApiLog.Listed(_logger, _watch, objects.Count, version, upserted, removed);
        bool appeared;
        lock (_gate)
        {
            appeared = _missing;
            _missing = false;
            _hasSynced = true;
            _everListed = true;
            _lastSync = _time.GetUtcNow();
            _resourceVersion = version;
            _lists++;
        }
        if (appeared)
        {
            KubeApiLog.KindAppeared(_logger, _watch);
        }
        _synced.TrySetResult();
        return version;
    }

    private async Task<WatchResult> WatchAsync(string version, CancellationToken cancellationToken)
    {
        // client-go's spread: between the minimum and twice it, so the watches of many agents do not end together.
        int timeoutSeconds = Math.Max(1, (int)(_options.MinWatchTimeout.TotalSeconds * (1 + Random.Shared.NextDouble())));
        var query = new StringBuilder(_watch.Resource.CollectionPath)
            .Append("?watch=true&allowWatchBookmarks=true&resourceVersion=").Append(Uri.EscapeDataString(version))
            .Append("&timeoutSeconds=").Append(timeoutSeconds);
        AppendSelectors(query);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds) + WatchClientGrace);
        long started = Stopwatch.GetTimestamp();
        int events = 0;
        bool expired = false;
        bool clientDeadline = false;
        string how = "closed by the server";
        try
        {
            using HttpResponseMessage response = await _connection.GetAsync(query.ToString(), deadline.Token).ConfigureAwait(false);
            Succeeded();
            Stream stream = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                PipeReader reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
                try
                {
                    while (!expired)
                    {
                        ReadResult read = await reader.ReadAsync(deadline.Token).ConfigureAwait(false);
                        ReadOnlySequence<byte> buffer = read.Buffer;
                        while (!expired && TryReadLine(ref buffer, out ReadOnlySequence<byte> line))
                        {
                            if (IsBlank(line))
                            {
                                continue;
                            }
                            expired = HandleEvent(line, ref version);
                            if (!expired)
                            {
                                events++;
                            }
                        }
                        if (buffer.Length > _options.MaxMessageBytes)
                        {
                            throw new InvalidDataException($"a watch event longer than {_options.MaxMessageBytes} bytes");
                        }
                        reader.AdvanceTo(buffer.Start, buffer.End);
                        if (read.IsCompleted)
                        {
                            // A partial last line is a cut stream; the watch resumes from the last whole event.
                            break;
                        }
                    }
                }
                finally
                {
                    await reader.CompleteAsync().ConfigureAwait(false);
                }
            }
            if (expired)
            {
                how = "expired";
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            // The server kept the watch open past its own timeout without a word: treat it as that timeout.
            clientDeadline = true;
            how = "no end from the server; closed by the client";
        }
        TimeSpan duration = Stopwatch.GetElapsedTime(started);
        KubeApiLog.WatchEnded(_logger, _watch, version, events, how);
        return new WatchResult(version, events, expired, clientDeadline, duration);
    }

    /// <summary>Applies one watch event; true when it says the version expired (410).</summary>
    private bool HandleEvent(ReadOnlySequence<byte> line, ref string version)
    {
        YamlMappingNode e = KubeJson.ParseObject(line);
        string type = KubeJson.Scalar(e, "type") ?? "";
        if (KubeJson.Child(e, "object") is not YamlMappingNode body)
        {
            throw new InvalidDataException($"a {type} watch event without an object");
        }
        lock (_gate)
        {
            _lastEvent = _time.GetUtcNow();
        }
        switch (type)
        {
            case "ADDED":
            case "MODIFIED":
                if (ToObject(body) is KubeObject obj)
                {
                    _store.Upsert(obj);
                    Advance(obj.ResourceVersion, ref version);
                }
                return false;
            case "DELETED":
                if (ToObject(body) is KubeObject gone)
                {
                    _store.Remove(gone.Key);
                    Advance(gone.ResourceVersion, ref version);
                }
                return false;
            case "BOOKMARK":
                Advance(KubeJson.ResourceVersionOf(body), ref version);
                return false;
            case "ERROR":
                int code = int.TryParse(KubeJson.Scalar(body, "code"), out int c) ? c : 0;
                if (code == 410)
                {
                    return true;
                }
                throw new KubeApiException(code, KubeJson.Scalar(body, "reason") ?? "",
                    $"watch ERROR {code} {KubeJson.Scalar(body, "reason")}: {KubeJson.Scalar(body, "message")}");
            default:
                KubeApiLog.UnknownEvent(_logger, _watch, type);
                return false;
        }
    }

    private void Advance(string? next, ref string version)
    {
        if (string.IsNullOrEmpty(next))
        {
            return;
        }
        version = next;
        lock (_gate)
        {
            _resourceVersion = next;
        }
    }

    private KubeObject? ToObject(YamlNode node)
    {
        if (node is not YamlMappingNode body)
        {
            KubeApiLog.BadObject(_logger, _watch, $"a {node.NodeType} where an object belongs");
            return null;
        }
        try
        {
            return KubeJson.ToKubeObject(body, _watch.Resource);
        }
        catch (FormatException e)
        {
            KubeApiLog.BadObject(_logger, _watch, e.Message);
            return null;
        }
    }

    private void AppendSelectors(StringBuilder query)
    {
        if (!string.IsNullOrEmpty(_watch.FieldSelector))
        {
            query.Append("&fieldSelector=").Append(Uri.EscapeDataString(_watch.FieldSelector));
        }
        if (!string.IsNullOrEmpty(_watch.LabelSelector))
        {
            query.Append("&labelSelector=").Append(Uri.EscapeDataString(_watch.LabelSelector));
        }
    }

    private async Task<byte[]> ReadBoundedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength > _options.MaxMessageBytes)
        {
            throw new InvalidDataException($"a list page of {response.Content.Headers.ContentLength} bytes (more than {_options.MaxMessageBytes})");
        }
        Stream stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var copy = new MemoryStream(response.Content.Headers.ContentLength is long n ? (int)n : 64 * 1024);
            byte[] chunk = ArrayPool<byte>.Shared.Rent(64 * 1024);
            try
            {
                int read;
                while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    if (copy.Length + read > _options.MaxMessageBytes)
                    {
                        throw new InvalidDataException($"a list page longer than {_options.MaxMessageBytes} bytes");
                    }
                    copy.Write(chunk, 0, read);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(chunk);
            }
            return copy.ToArray();
        }
    }

    private void Succeeded()
    {
        int streak;
        lock (_gate)
        {
            streak = _failureStreak;
            _failureStreak = 0;
            _error = null;
        }
        if (streak > 0)
        {
            KubeApiLog.Recovered(_logger, _watch, streak);
        }
    }

    private TimeSpan Failed(string operation, string error)
    {
        int streak;
        lock (_gate)
        {
            streak = ++_failureStreak;
            _failures++;
            _error = $"{operation}: {error}";
            _errorTime = _time.GetUtcNow();
        }
        TimeSpan delay = Backoff(streak);
        if (streak == 1)
        {
            KubeApiLog.Failed(_logger, _watch, operation, delay, error);
        }
        else
        {
            KubeApiLog.FailedAgain(_logger, _watch, operation, streak, delay, error);
        }
        return delay;
    }

    private void MarkMissing()
    {
        bool first;
        lock (_gate)
        {
            first = !_missing;
            _missing = true;
            _hasSynced = true;
            _error = null;
            _failureStreak = 0;
        }
        // Not installed means no such objects: a CRD removed while we watched took its objects with it.
        _store.Replace(_watch.Resource.Group, _watch.Resource.Kind, []);
        if (first)
        {
            KubeApiLog.KindMissing(_logger, _watch, _options.MissingKindRetry);
        }
        _synced.TrySetResult();
    }

    /// <summary>Exponential from <see cref="KubernetesApiOptions.InitialBackoff"/>, capped, jittered to 50-150%.</summary>
    private TimeSpan Backoff(int attempt)
    {
        double factor = Math.Pow(2, Math.Min(attempt - 1, 30));
        double ms = Math.Min(_options.InitialBackoff.TotalMilliseconds * factor, _options.MaxBackoff.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms * (0.5 + Random.Shared.NextDouble()));
    }

    /// <summary>Waits; false when cancelled.</summary>
    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return !cancellationToken.IsCancellationRequested;
    }

    private static string Describe(Exception e) => e switch
    {
        HttpRequestException { InnerException: Exception inner } h => $"{h.Message} ({inner.Message})",
        _ => e.Message,
    };

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        SequencePosition? end = buffer.PositionOf((byte)'\n');
        if (end is null)
        {
            line = default;
            return false;
        }
        line = buffer.Slice(0, end.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, end.Value));
        return true;
    }

    private static bool IsBlank(ReadOnlySequence<byte> line)
    {
        foreach (ReadOnlyMemory<byte> segment in line)
        {
            foreach (byte b in segment.Span)
            {
                if (b is not ((byte)' ' or (byte)'\r' or (byte)'\t'))
                {
                    return false;
                }
            }
        }
        return true;
    }

    /// <param name="Events">Objects and bookmarks received (not the ERROR that ended an expired watch).</param>
    private readonly record struct WatchResult(string ResourceVersion, int Events, bool Expired, bool ClientDeadline, TimeSpan Duration);
}
