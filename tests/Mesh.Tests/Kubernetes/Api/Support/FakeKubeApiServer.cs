using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Ambient.Mesh.Kubernetes.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Hosting;

namespace Ambient.Mesh.Tests.Kubernetes.Api.Support;

/// <summary>
/// An in-process stand-in for a Kubernetes API server (no real one can run on this machine) on 127.0.0.1,
/// speaking the wire format of list and watch as the real one does.
/// </summary>
/// <remarks>
/// <para>Lists: <c>{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"N","continue":...},"items":[...]}</c>,
/// paged by <c>limit</c>/<c>continue</c> (a continued list naming a resourceVersion is refused, as the real server
/// does); items of built-in kinds come without apiVersion and kind, CRD items with them. Watches: HTTP 200, chunked,
/// one <c>{"type":...,"object":...}</c> line per event, each ending in <c>\n</c>; from resourceVersion ""/"0" the
/// current objects come first as ADDED; from an older version than the history holds (after <see cref="Compact"/>)
/// an ERROR event with a 410 Expired Status, as the real server answers; BOOKMARKs only to watches that asked
/// <c>allowWatchBookmarks=true</c>; <c>timeoutSeconds</c> honoured. Field selectors (<c>a.b=v</c>, <c>!=</c>) and
/// label selectors (<c>k=v</c>, <c>k!=v</c>, <c>k</c>, <c>!k</c>) filter both, and an object leaving or entering a
/// watch's selection is a DELETED or ADDED event for it, as the watch cache does. A kind not installed answers 404
/// with a NotFound Status. One resourceVersion counter for all kinds, like etcd's.</para>
/// <para>Test controls: hold events and lists, end or expire open watches, fail the next requests with a status,
/// stop and start again on the same port (state kept, like a restarted API server over the same etcd), and a
/// request log.</para>
/// </remarks>
internal sealed class FakeKubeApiServer : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, KubeResource> _byPath = new(StringComparer.Ordinal);
    private readonly HashSet<KubeResource> _installed = [];
    private readonly Dictionary<KubeResource, SortedDictionary<string, JsonObject>> _objects = [];
    private readonly List<HistoryEntry> _history = [];
    private readonly List<Watch> _watches = [];
    private readonly Dictionary<string, ListSnapshot> _continues = new(StringComparer.Ordinal);
    private readonly Dictionary<(KubeResource, bool Watch), Queue<int>> _failures = [];
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private readonly Channel<RecordedRequest> _requestFeed = Channel.CreateUnbounded<RecordedRequest>();
    private readonly X509Certificate2? _serverCertificate;
    private long _version = 100;
    private long _compactedTo;
    private long _uid;
    private bool _holdEvents;
    private TaskCompletionSource _listGate = Released();
    private KubeResource? _heldLists;
    private int _expireNextContinue;
    private WebApplication? _app;

    private FakeKubeApiServer(IEnumerable<KubeResource> installed, X509Certificate2? serverCertificate)
    {
        foreach (KubeResource resource in KubeResource.MeshKinds)
        {
            _byPath[resource.CollectionPath] = resource;
            _objects[resource] = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
        }
        _installed.UnionWith(installed);
        _serverCertificate = serverCertificate;
    }

    /// <summary>The server URL, e.g. http://127.0.0.1:41234.</summary>
    public Uri Url { get; private set; } = null!;

    public int Port { get; private set; }

    /// <summary>Every request received, oldest first.</summary>
    public IReadOnlyCollection<RecordedRequest> Requests => _requests;

    /// <summary>
    /// Starts a server with <paramref name="installed"/> kinds (default: all of <see cref="KubeResource.MeshKinds"/>).
    /// With a certificate it serves https and asks for a client certificate (optional, recorded per request).
    /// </summary>
    public static async Task<FakeKubeApiServer> StartAsync(IEnumerable<KubeResource>? installed = null, X509Certificate2? serverCertificate = null)
    {
        var server = new FakeKubeApiServer(installed ?? KubeResource.MeshKinds, serverCertificate);
        await server.ListenAsync(0);
        return server;
    }

    private async Task ListenAsync(int port)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, port, listen =>
            {
                if (_serverCertificate is not null)
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = _serverCertificate,
                        ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                        // The test checks which certificate came; trust is not this server's concern.
                        ClientCertificateValidation = (_, _, _) => true,
                    });
                }
                else
                {
                    listen.Protocols = HttpProtocols.Http1;
                }
            });
        });
        builder.WebHost.UseShutdownTimeout(TimeSpan.FromSeconds(1));
        WebApplication app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        _app = app;
        var address = new Uri(app.Urls.First());
        Port = address.Port;
        Url = new Uri($"{(_serverCertificate is null ? "http" : "https")}://127.0.0.1:{Port}");
    }

    /// <summary>Stops listening and ends every watch (a crashed or restarting API server). State is kept.</summary>
    public async Task StopAsync()
    {
        WebApplication? app;
        lock (_gate)
        {
            app = _app;
            _app = null;
            foreach (Watch watch in _watches)
            {
                watch.Abort();
            }
            _watches.Clear();
        }
        if (app is not null)
        {
            await app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await app.DisposeAsync();
        }
    }

    /// <summary>Listens again on the same port, with the state it had.</summary>
    public Task RestartAsync() => ListenAsync(Port);

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _listGate.TrySetResult();
    }

    // ---- the cluster's state ----

    /// <summary>The newest resourceVersion handed out.</summary>
    public long ResourceVersion
    {
        get
        {
            lock (_gate)
            {
                return _version;
            }
        }
    }

    public void Install(KubeResource resource)
    {
        lock (_gate)
        {
            _installed.Add(resource);
        }
    }

    /// <summary>Removes a kind and its objects (a deleted CRD); its open watches end.</summary>
    public void Uninstall(KubeResource resource)
    {
        lock (_gate)
        {
            _installed.Remove(resource);
            _objects[resource].Clear();
            foreach (Watch watch in _watches.Where(w => w.Resource == resource).ToList())
            {
                watch.End();
                _watches.Remove(watch);
            }
        }
    }

    /// <summary>Creates or replaces an object (metadata.namespace/name key it); returns its new resourceVersion.</summary>
    public string Apply(KubeResource resource, JsonObject obj)
    {
        lock (_gate)
        {
            obj = (JsonObject)obj.DeepClone();
            obj["apiVersion"] = resource.ApiVersion;
            obj["kind"] = resource.Kind;
            JsonObject metadata = obj["metadata"]?.AsObject() ?? throw new ArgumentException("no metadata");
            string key = Key(metadata);
            SortedDictionary<string, JsonObject> objects = _objects[resource];
            objects.TryGetValue(key, out JsonObject? previous);
            string version = (++_version).ToString(System.Globalization.CultureInfo.InvariantCulture);
            metadata["resourceVersion"] = version;
            metadata["uid"] = previous?["metadata"]?["uid"]?.GetValue<string>() ?? $"uid-{++_uid:D6}";
            metadata["creationTimestamp"] ??= "2025-01-01T00:00:00Z";
            objects[key] = obj;
            Record(new HistoryEntry(_version, resource, previous, obj));
            return version;
        }
    }

    public void Delete(KubeResource resource, string ns, string name)
    {
        lock (_gate)
        {
            string key = ns.Length == 0 ? name : $"{ns}/{name}";
            if (!_objects[resource].Remove(key, out JsonObject? previous))
            {
                throw new InvalidOperationException($"no {resource} {key}");
            }
            JsonObject gone = (JsonObject)previous.DeepClone();
            gone["metadata"]!["resourceVersion"] = (++_version).ToString(System.Globalization.CultureInfo.InvariantCulture);
            Record(new HistoryEntry(_version, resource, previous, null) { Deleted = gone });
        }
    }

    /// <summary>Drops the event history up to now: a watch from an older version gets 410 Expired.</summary>
    public void Compact()
    {
        lock (_gate)
        {
            _compactedTo = _version;
            _history.Clear();
        }
    }

    // ---- watch controls ----

    /// <summary>While held, changes are stored but not sent to open watches (a watch cache falling behind).</summary>
    public void HoldEvents()
    {
        lock (_gate)
        {
            _holdEvents = true;
        }
    }

    /// <summary>Sends every held event to the open watches.</summary>
    public void ReleaseEvents()
    {
        lock (_gate)
        {
            _holdEvents = false;
            foreach (Watch watch in _watches)
            {
                watch.Flush();
            }
        }
    }

    /// <summary>Sends an ERROR event with a 410 Expired Status to every open watch (of one kind, or all) and ends them.</summary>
    public void ExpireWatches(KubeResource? resource = null)
    {
        lock (_gate)
        {
            foreach (Watch watch in _watches.Where(w => resource is null || w.Resource == resource).ToList())
            {
                watch.Send(Event("ERROR", Status(410, "Expired", $"too old resource version: {watch.From} ({_compactedTo})")));
                watch.End();
                _watches.Remove(watch);
            }
        }
    }

    /// <summary>Ends every open watch (of one kind, or all) cleanly, as their timeoutSeconds would.</summary>
    public void EndWatches(KubeResource? resource = null)
    {
        lock (_gate)
        {
            foreach (Watch watch in _watches.Where(w => resource is null || w.Resource == resource).ToList())
            {
                watch.End();
                _watches.Remove(watch);
            }
        }
    }

    /// <summary>Sends a BOOKMARK at the current resourceVersion to the open watches of a kind that asked for them; returns it.</summary>
    public string SendBookmark(KubeResource resource)
    {
        lock (_gate)
        {
            string version = _version.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var bookmark = new JsonObject
            {
                ["kind"] = resource.Kind,
                ["apiVersion"] = resource.ApiVersion,
                ["metadata"] = new JsonObject { ["resourceVersion"] = version },
            };
            foreach (Watch watch in _watches.Where(w => w.Resource == resource && w.Bookmarks))
            {
                watch.Send(Event("BOOKMARK", bookmark));
            }
            return version;
        }
    }

    /// <summary>Sends an arbitrary ERROR event (a Status with <paramref name="code"/>) to the open watches of a kind.</summary>
    public void SendError(KubeResource resource, int code, string reason)
    {
        lock (_gate)
        {
            foreach (Watch watch in _watches.Where(w => w.Resource == resource))
            {
                watch.Send(Event("ERROR", Status(code, reason, $"injected {code}")));
            }
        }
    }

    public int OpenWatches(KubeResource resource)
    {
        lock (_gate)
        {
            return _watches.Count(w => w.Resource == resource);
        }
    }

    // ---- list and request controls ----

    /// <summary>The next <paramref name="count"/> lists (or watch requests) of a kind answer with HTTP <paramref name="status"/>.</summary>
    public void FailNext(KubeResource resource, int status, int count = 1, bool watch = false)
    {
        lock (_gate)
        {
            if (!_failures.TryGetValue((resource, watch), out Queue<int>? queue))
            {
                _failures[(resource, watch)] = queue = new Queue<int>();
            }
            for (int i = 0; i < count; i++)
            {
                queue.Enqueue(status);
            }
        }
    }

    /// <summary>The next request with a continue token gets 410 Expired (its list snapshot is gone).</summary>
    public void ExpireNextContinue()
    {
        lock (_gate)
        {
            _expireNextContinue++;
        }
    }

    /// <summary>Lists of <paramref name="resource"/> wait until <see cref="ReleaseLists"/>.</summary>
    public void HoldLists(KubeResource resource)
    {
        lock (_gate)
        {
            _heldLists = resource;
            _listGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public void ReleaseLists()
    {
        lock (_gate)
        {
            _heldLists = null;
            _listGate.TrySetResult();
        }
    }

    /// <summary>Waits for a request (past or future) that matches; every wait has a timeout.</summary>
    public async Task<RecordedRequest> WaitForRequestAsync(Func<RecordedRequest, bool> match, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        foreach (RecordedRequest seen in _requests)
        {
            if (match(seen))
            {
                return seen;
            }
        }
        try
        {
            // The feed repeats everything recorded, so nothing between the scan above and here is missed.
            await foreach (RecordedRequest request in _requestFeed.Reader.ReadAllAsync(cts.Token))
            {
                if (match(request))
                {
                    return request;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        throw new TimeoutException($"no matching request within {timeout}; saw: {string.Join(", ", _requests.Select(r => r.ToString()).TakeLast(20))}");
    }

    // ---- HTTP ----

    private async Task HandleAsync(HttpContext context)
    {
        HttpRequest request = context.Request;
        string path = request.Path.Value!.TrimStart('/');
        var recorded = new RecordedRequest(
            path,
            request.Query.ToDictionary(q => q.Key, q => q.Value.ToString(), StringComparer.Ordinal),
            request.Headers.Authorization.ToString(),
            context.Connection.ClientCertificate?.Subject,
            request.Protocol);
        _requests.Enqueue(recorded);
        _requestFeed.Writer.TryWrite(recorded);

        if (!_byPath.TryGetValue(path, out KubeResource? resource) || !request.Method.Equals("GET", StringComparison.Ordinal))
        {
            await WriteStatusAsync(context, 404, "NotFound", "the server could not find the requested resource");
            return;
        }
        bool watch = recorded.Query.TryGetValue("watch", out string? w) && (w == "true" || w == "1");
        if (watch)
        {
            await WatchAsync(context, resource, recorded);
        }
        else
        {
            await ListAsync(context, resource, recorded);
        }
    }

    private async Task ListAsync(HttpContext context, KubeResource resource, RecordedRequest request)
    {
        Task gate;
        lock (_gate)
        {
            gate = _heldLists == resource ? _listGate.Task : Task.CompletedTask;
        }
        await gate.WaitAsync(context.RequestAborted);

        string body;
        int status = 200;
        lock (_gate)
        {
            if (!_installed.Contains(resource))
            {
                (status, body) = (404, StatusJson(404, "NotFound", "the server could not find the requested resource"));
            }
            else if (_failures.TryGetValue((resource, false), out Queue<int>? failures) && failures.TryDequeue(out int failure))
            {
                (status, body) = (failure, StatusJson(failure, failure switch { 410 => "Expired", _ => "InternalError" }, $"injected {failure}"));
            }
            else
            {
                (status, body) = ListPage(resource, request);
            }
        }
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body, context.RequestAborted);
    }

    private (int Status, string Body) ListPage(KubeResource resource, RecordedRequest request)
    {
        int limit = request.Query.TryGetValue("limit", out string? l) && int.TryParse(l, out int n) && n > 0 ? n : int.MaxValue;
        ListSnapshot snapshot;
        int offset;
        if (request.Query.TryGetValue("continue", out string? token) && token.Length > 0)
        {
            if (request.Query.TryGetValue("resourceVersion", out string? rv) && rv.Length > 0)
            {
                return (400, StatusJson(400, "BadRequest", "specifying resource version is not allowed when using continue"));
            }
            string[] parts = token.Split(':');
            if (_expireNextContinue > 0 || parts.Length != 2 || !_continues.TryGetValue(parts[0], out snapshot!))
            {
                _expireNextContinue = Math.Max(0, _expireNextContinue - 1);
                return (410, StatusJson(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."));
            }
            offset = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        else
        {
            List<JsonObject> items = [.. _objects[resource].Values.Where(o => Matches(o, request))];
            snapshot = new ListSnapshot(_version, items);
            offset = 0;
        }
        List<JsonObject> page = [.. snapshot.Items.Skip(offset).Take(limit)];
        var metadata = new JsonObject { ["resourceVersion"] = snapshot.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        int next = offset + page.Count;
        if (next < snapshot.Items.Count)
        {
            string id = Guid.NewGuid().ToString("N");
            _continues[id] = snapshot;
            metadata["continue"] = $"{id}:{next}";
            metadata["remainingItemCount"] = snapshot.Items.Count - next;
        }
        var itemsJson = new JsonArray();
        foreach (JsonObject item in page)
        {
            var copy = (JsonObject)item.DeepClone();
            if (!resource.Optional)
            {
                // The real server leaves these out of the items of a built-in list.
                copy.Remove("apiVersion");
                copy.Remove("kind");
            }
            itemsJson.Add(copy);
        }
        var list = new JsonObject
        {
            ["kind"] = resource.Kind + "List",
            ["apiVersion"] = resource.ApiVersion,
            ["metadata"] = metadata,
            ["items"] = itemsJson,
        };
        return (200, list.ToJsonString());
    }

    private async Task WatchAsync(HttpContext context, KubeResource resource, RecordedRequest request)
    {
        Watch? watch = null;
        int refusal = 0;
        lock (_gate)
        {
            if (!_installed.Contains(resource))
            {
                refusal = 404;
            }
            else if (_failures.TryGetValue((resource, true), out Queue<int>? failures) && failures.TryDequeue(out int failure))
            {
                refusal = failure;
            }
            else
            {
                string from = request.Query.GetValueOrDefault("resourceVersion") ?? "";
                watch = new Watch(resource, request, from);
                if (from is "" or "0")
                {
                    foreach (JsonObject obj in _objects[resource].Values.Where(o => Matches(o, request)))
                    {
                        watch.Send(Event("ADDED", obj));
                    }
                }
                else if (!long.TryParse(from, out long since) || since < _compactedTo)
                {
                    // What the real server does for a version older than its history: 200, then one ERROR event.
                    watch.Send(Event("ERROR", Status(410, "Expired", $"too old resource version: {from} ({_compactedTo})")));
                    watch.End();
                }
                else
                {
                    foreach (HistoryEntry entry in _history.Where(h => h.Resource == resource && h.Version > since))
                    {
                        if (watch.EventFor(entry) is string line)
                        {
                            watch.Send(line);
                        }
                    }
                }
                if (!watch.Ended)
                {
                    _watches.Add(watch);
                }
            }
        }
        if (watch is null)
        {
            await WriteStatusAsync(context, refusal, refusal switch { 404 => "NotFound", 410 => "Expired", _ => "InternalError" },
                refusal == 404 ? "the server could not find the requested resource" : $"injected {refusal}");
            return;
        }

        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.StartAsync(context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
        int timeoutSeconds = request.Query.TryGetValue("timeoutSeconds", out string? t) && int.TryParse(t, out int s) ? s : 1800;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, watch.Aborted);
        timeout.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await foreach (string line in watch.Lines.ReadAllAsync(timeout.Token))
            {
                await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), timeout.Token);
                if (watch.Lines.Count == 0)
                {
                    await context.Response.Body.FlushAsync(timeout.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            lock (_gate)
            {
                _watches.Remove(watch);
            }
        }
        if (watch.Aborted.IsCancellationRequested)
        {
            // A crash, not a clean end: cut the connection mid-stream.
            context.Abort();
        }
    }

    private void Record(HistoryEntry entry)
    {
        _history.Add(entry);
        foreach (Watch watch in _watches)
        {
            if (watch.Resource == entry.Resource && watch.EventFor(entry) is string line)
            {
                if (_holdEvents)
                {
                    watch.Held.Enqueue(line);
                }
                else
                {
                    watch.Send(line);
                }
            }
        }
    }

    private static bool Matches(JsonObject obj, RecordedRequest request) =>
        FieldsMatch(obj, request.Query.GetValueOrDefault("fieldSelector")) && LabelsMatch(obj, request.Query.GetValueOrDefault("labelSelector"));

    private static bool FieldsMatch(JsonObject obj, string? selector)
    {
        if (string.IsNullOrEmpty(selector))
        {
            return true;
        }
        foreach (string term in selector.Split(','))
        {
            bool negate = term.Contains("!=", StringComparison.Ordinal);
            string[] parts = term.Split(negate ? "!=" : term.Contains("==", StringComparison.Ordinal) ? "==" : "=", 2);
            JsonNode? node = obj;
            foreach (string segment in parts[0].Split('.'))
            {
                node = node?[segment];
            }
            string value = node?.GetValue<string>() ?? "";
            if ((value == parts[1]) == negate)
            {
                return false;
            }
        }
        return true;
    }

    private static bool LabelsMatch(JsonObject obj, string? selector)
    {
        if (string.IsNullOrEmpty(selector))
        {
            return true;
        }
        JsonObject? labels = obj["metadata"]?["labels"]?.AsObject();
        foreach (string term in selector.Split(','))
        {
            bool ok;
            if (term.Contains("!=", StringComparison.Ordinal))
            {
                string[] kv = term.Split("!=", 2);
                ok = labels?[kv[0]]?.GetValue<string>() != kv[1];
            }
            else if (term.Contains('=', StringComparison.Ordinal))
            {
                string[] kv = term.Split('=', 2);
                ok = labels?[kv[0]]?.GetValue<string>() == kv[1];
            }
            else if (term.StartsWith('!'))
            {
                ok = labels?.ContainsKey(term[1..]) != true;
            }
            else
            {
                ok = labels?.ContainsKey(term) == true;
            }
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }

    private static string Key(JsonObject metadata)
    {
        string name = metadata["name"]?.GetValue<string>() ?? throw new ArgumentException("no metadata.name");
        string ns = metadata["namespace"]?.GetValue<string>() ?? "";
        return ns.Length == 0 ? name : $"{ns}/{name}";
    }

    private static string Event(string type, JsonObject obj) =>
        new JsonObject { ["type"] = type, ["object"] = obj.DeepClone() }.ToJsonString();

    private static JsonObject Status(int code, string reason, string message) => new()
    {
        ["kind"] = "Status",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject(),
        ["status"] = "Failure",
        ["message"] = message,
        ["reason"] = reason,
        ["code"] = code,
    };

    private static string StatusJson(int code, string reason, string message) => Status(code, reason, message).ToJsonString();

    private static async Task WriteStatusAsync(HttpContext context, int code, string reason, string message)
    {
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(StatusJson(code, reason, message), context.RequestAborted);
    }

    private static TaskCompletionSource Released()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs.TrySetResult();
        return tcs;
    }

    private sealed record HistoryEntry(long Version, KubeResource Resource, JsonObject? Previous, JsonObject? Current)
    {
        /// <summary>For a deletion: the object as it was, with the deletion's resourceVersion.</summary>
        public JsonObject? Deleted { get; init; }
    }

    private sealed record ListSnapshot(long Version, List<JsonObject> Items);

    /// <summary>One open watch: its selection and the lines waiting to be written.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "cancelled when the watch ends, while its handler may still read the token; no timer to free")]
    private sealed class Watch(KubeResource resource, RecordedRequest request, string from)
    {
        private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
        private readonly CancellationTokenSource _aborted = new();

        public KubeResource Resource { get; } = resource;

        public string From { get; } = from;

        public bool Bookmarks { get; } = request.Query.GetValueOrDefault("allowWatchBookmarks") == "true";

        public Queue<string> Held { get; } = new();

        public bool Ended { get; private set; }

        public ChannelReader<string> Lines => _lines.Reader;

        public CancellationToken Aborted => _aborted.Token;

        public void Send(string line) => _lines.Writer.TryWrite(line);

        public void Flush()
        {
            while (Held.TryDequeue(out string? line))
            {
                Send(line);
            }
        }

        /// <summary>A clean end: what was sent is written, then the response completes.</summary>
        public void End()
        {
            Ended = true;
            _lines.Writer.TryComplete();
        }

        /// <summary>A crash: the connection is cut.</summary>
        public void Abort()
        {
            Ended = true;
            _aborted.Cancel();
            _lines.Writer.TryComplete();
        }

        /// <summary>The event this watch sees for a change, given its selectors; null when the change is outside them.</summary>
        public string? EventFor(HistoryEntry entry)
        {
            bool before = entry.Previous is not null && Matches(entry.Previous, request);
            bool after = entry.Current is not null && Matches(entry.Current, request);
            if (entry.Current is null)
            {
                return before ? Event("DELETED", entry.Deleted!) : null;
            }
            if (before && after)
            {
                return Event("MODIFIED", entry.Current);
            }
            if (after)
            {
                return Event("ADDED", entry.Current);
            }
            if (before)
            {
                // Left the selection: to this watch the object is gone.
                return Event("DELETED", entry.Current);
            }
            return null;
        }
    }
}

/// <summary>One request the fake server received.</summary>
internal sealed record RecordedRequest(string Path, IReadOnlyDictionary<string, string> Query, string Authorization, string? ClientCertificate, string Protocol)
{
    public bool IsWatch => Query.TryGetValue("watch", out string? w) && (w == "true" || w == "1");

    public string? ResourceVersion => Query.GetValueOrDefault("resourceVersion");

    public override string ToString() => $"{Path}?{string.Join('&', Query.Select(q => $"{q.Key}={q.Value}"))}";
}
