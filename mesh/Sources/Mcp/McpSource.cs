using System.Collections.Immutable;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Protos.Envoy;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Sources.Mcp;

/// <summary>
/// One MCP registry as a mesh source, in Istio's MCP-over-xDS shape: a state-of-the-world ADS stream
/// (<c>StreamAggregatedResources</c>) asking for the GVK type URLs <c>networking.istio.io/VERSION/ServiceEntry</c> and
/// <c>.../WorkloadEntry</c>, each resource an <c>istio.mcp.v1alpha1.Resource</c>. Every response is the registry's
/// whole set of that kind: what it leaves out is withdrawn. The objects go through the one <see cref="KubeTranslator"/>
/// manifests and the Kubernetes API use, and the result replaces this source's state in the store.
/// </summary>
/// <remarks>
/// <para>Each response is answered: an ACK (its version and nonce), or a NACK (the last accepted version, the nonce, and
/// an error_detail naming each refused resource and why) while the valid resources of the same response still apply;
/// a refused resource keeps its last good version if it had one.</para>
/// <para>A broken stream is re-opened after a jittered back-off; the registry's objects stay for
/// <see cref="McpRegistryOptions.StaleAfter"/>, then they are withdrawn (the other sources are untouched) until the
/// registry answers again. A registry that never answers stops holding up readiness after the same time.</para>
/// </remarks>
public sealed partial class McpSource : IHostedService, IAsyncDisposable
{
    private readonly McpRegistryOptions _options;
    private readonly ControlPlaneConnection _connection;
    private readonly AggregatedDiscoveryService.AggregatedDiscoveryServiceClient _client;
    private readonly KubeTranslator _translator;
    private readonly MeshSource _source;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Node _node;
    private readonly Lock _gate = new();
    // Per kind: "ns/name" -> the object as last accepted.
    private readonly Dictionary<string, Dictionary<string, KubeObject>> _held = new(StringComparer.Ordinal);
    // Per requested type URL: the version_info last accepted (sent back in a NACK).
    private readonly Dictionary<string, string> _versions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _refused = new(StringComparer.Ordinal);
    private readonly HashSet<string> _syncedKinds = new(StringComparer.Ordinal);
    private ITimer? _staleTimer;
    private bool _withdrawn;
    // A stream is up and the registry has answered on it.
    private bool _connected;
    private CancellationTokenSource? _stopping;
    private Task _run = Task.CompletedTask;
    private long _acks;
    private long _nacks;
    private long _connects;

    public McpSource(MeshStore store, McpRegistryOptions options, ControlPlaneConnection connection, KubeTranslator translator, ILogger logger, ControlPlaneOptions? identity = null, TimeProvider? time = null)
    {
        _options = options;
        _connection = connection;
        _client = new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(connection.Channel);
        _translator = translator;
        _logger = logger;
        _node = NodeFor(identity, $"ambient~{options.Name}");
        _time = time ?? TimeProvider.System;
        foreach (string kind in McpObjects.Kinds)
        {
            _held[kind] = new Dictionary<string, KubeObject>(StringComparer.Ordinal);
        }
        _source = store.AddSource($"mcp:{options.Name}", options.Precedence, logConflicts: true);
    }

    public MeshSource Source => _source;

    public McpRegistryOptions Options => _options;

    /// <summary>Reconnect delays (tests shorten them).</summary>
    public Backoff Backoff { get; init; } = Backoff.Istio;

    /// <summary>Responses accepted whole, responses refused in part, and streams opened.</summary>
    public (long Acks, long Nacks, long Connects) Counters => (Interlocked.Read(ref _acks), Interlocked.Read(ref _nacks), Interlocked.Read(ref _connects));

    /// <summary>The type URLs asked for, in this registry's API version.</summary>
    public IReadOnlyList<string> TypeUrls => [.. McpObjects.Kinds.Select(k => McpObjects.TypeUrl(_options.ApiVersion, k))];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _stopping = new CancellationTokenSource();
        Log.Started(_logger, _options.Name, _connection.Address.ToString(), _options.Precedence);
        // A registry that never answers must not hold up readiness (or the others) forever.
        ArmStaleTimer();
        _run = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private Task RunAsync(CancellationToken ct) => _connection.RunStreamAsync(
        Backoff,
        StreamAsync,
        reason =>
        {
            _source.ReportError(Withdrawn
                ? $"MCP stream to {_connection.Address} failed; unreachable for longer than {_options.StaleAfter}, its objects are withdrawn until it answers again: {reason}"
                : $"MCP stream to {_connection.Address} failed, keeping the last state for {_options.StaleAfter}: {reason}");
            Log.StreamFailed(_logger, _options.Name, _connection.Address.ToString(), reason);
        },
        () =>
        {
            lock (_gate)
            {
                _connected = false;
            }
            ArmStaleTimer();
        },
        ct);

    private async Task StreamAsync(Action answered, CancellationToken ct)
    {
        using AsyncDuplexStreamingCall<DiscoveryRequest, DiscoveryResponse> call =
            _client.StreamAggregatedResources(new CallOptions(headers: _connection.Headers(), cancellationToken: ct));
        Interlocked.Increment(ref _connects);
        foreach (string type in TypeUrls)
        {
            await call.RequestStream.WriteAsync(new DiscoveryRequest { TypeUrl = type, Node = _node }, ct).ConfigureAwait(false);
        }
        await foreach (DiscoveryResponse response in call.ResponseStream.ReadAllAsync(ct).ConfigureAwait(false))
        {
            DiscoveryRequest reply = Handle(response);
            await call.RequestStream.WriteAsync(reply, ct).ConfigureAwait(false);
            answered();
        }
        throw new IOException("the registry ended the stream");
    }

    /// <summary>Applies one full snapshot of a kind (its valid resources) and builds the ACK or NACK.</summary>
    private DiscoveryRequest Handle(DiscoveryResponse response)
    {
        if (McpObjects.KindOf(response.TypeUrl) is not { } kind)
        {
            Interlocked.Increment(ref _nacks);
            string message = $"{response.TypeUrl}: not a type this agent asked for ({string.Join(", ", TypeUrls)})";
            Log.Nacked(_logger, _options.Name, response.TypeUrl, 1, message);
            return Answer(response, message);
        }
        string version = response.TypeUrl.Split('/')[1];
        var errors = new List<string>();
        TranslationResult result;
        lock (_gate)
        {
            Dictionary<string, KubeObject> before = _held[kind];
            var next = new Dictionary<string, KubeObject>(StringComparer.Ordinal);
            var refusedNames = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < response.Resources.Count; i++)
            {
                string id = $"{kind} #{i}";
                try
                {
                    var resource = McpObjects.Unwrap(response.Resources[i]);
                    if (resource.Metadata is { Name.Length: > 0 } m)
                    {
                        id = $"{kind} {m.Name.TrimStart('/')}";
                    }
                    KubeObject o = McpObjects.ToObject(kind, version, resource);
                    string key = $"{o.Namespace}/{o.Name}";
                    if (!next.TryAdd(key, Reuse(before, key, o)))
                    {
                        throw new McpResourceException("is in the response twice; the first is used");
                    }
                }
                catch (Exception ex) when (ex is McpResourceException or Google.Protobuf.InvalidProtocolBufferException)
                {
                    errors.Add($"{id}: {ex.Message}");
                    refusedNames.Add(id);
                }
            }
            // A refused resource keeps its last good version: it is in the snapshot, just unreadable this time.
            foreach ((string key, KubeObject old) in before)
            {
                if (!next.ContainsKey(key) && refusedNames.Contains($"{kind} {key}"))
                {
                    next[key] = old;
                }
            }
            result = Translate(kind, next, before, errors);
            _versions[response.TypeUrl] = errors.Count == 0 ? response.VersionInfo : _versions.GetValueOrDefault(response.TypeUrl, "");
            _refused.Clear();
            foreach (string e in errors)
            {
                _refused[e] = e;
            }
            _withdrawn = false;
            _connected = true;
            _source.Replace(result.Resources);
        }
        if (errors.Count == 0)
        {
            _source.ReportSuccess();
        }
        else
        {
            _source.ReportError($"{errors.Count} registry resources refused (NACKed; the rest applied)", errors);
        }
        MarkKindSynced(kind);
        lock (_gate)
        {
            // Until every kind has answered, the timer still bounds how long readiness waits (see Withdraw).
            if (_syncedKinds.Count == McpObjects.Kinds.Length)
            {
                DisarmStaleTimer();
            }
        }
        Log.Applied(_logger, _options.Name, response.TypeUrl, response.Resources.Count - errors.Count, response.VersionInfo, response.Nonce);
        if (errors.Count == 0)
        {
            Interlocked.Increment(ref _acks);
            return Answer(response, null);
        }
        Interlocked.Increment(ref _nacks);
        string detail = string.Join("; ", errors);
        Log.Nacked(_logger, _options.Name, response.TypeUrl, errors.Count, detail);
        return Answer(response, detail);
    }

    /// <summary>An unchanged resource keeps its object instance, so the translator's per-instance memory applies.</summary>
    private static KubeObject Reuse(Dictionary<string, KubeObject> before, string key, KubeObject o) =>
        before.TryGetValue(key, out KubeObject? old) && old.ResourceVersion.Length > 0 && old.ResourceVersion == o.ResourceVersion && old.ApiVersion == o.ApiVersion ? old : o;

    /// <summary>
    /// Translates this registry's objects with <paramref name="next"/> for <paramref name="kind"/>. An object the
    /// translator refuses is reported and, when it had a good version before, that version is put back.
    /// </summary>
    private TranslationResult Translate(string kind, Dictionary<string, KubeObject> next, Dictionary<string, KubeObject> before, List<string> errors)
    {
        IEnumerable<KubeObject> All() => _held.Where(kv => kv.Key != kind).SelectMany(kv => kv.Value.Values).Concat(next.Values);
        TranslationResult result = _translator.Translate(All());
        bool reverted = false;
        foreach (Config.ConfigError e in result.Errors)
        {
            errors.Add(e.Field.Length > 0 ? $"{e.Field}: {e.Message}" : e.Message);
            // The field starts with the object ("ServiceEntry ns/name: spec.hosts").
            foreach ((string key, KubeObject o) in next)
            {
                if (e.Field.StartsWith($"{kind} {key}", StringComparison.Ordinal) && before.TryGetValue(key, out KubeObject? good) && !ReferenceEquals(good, o))
                {
                    next[key] = good;
                    reverted = true;
                    break;
                }
            }
        }
        if (reverted)
        {
            result = _translator.Translate(All());
        }
        _held[kind] = next;
        return result;
    }

    private DiscoveryRequest Answer(DiscoveryResponse response, string? error)
    {
        var request = new DiscoveryRequest
        {
            TypeUrl = response.TypeUrl,
            ResponseNonce = response.Nonce,
            Node = _node,
        };
        lock (_gate)
        {
            request.VersionInfo = _versions.GetValueOrDefault(response.TypeUrl, "");
        }
        if (error is not null)
        {
            request.ErrorDetail = new Protos.Google.Status { Code = (int)StatusCode.InvalidArgument, Message = error };
        }
        return request;
    }

    private void MarkKindSynced(string kind)
    {
        bool all;
        lock (_gate)
        {
            if (!_syncedKinds.Add(kind))
            {
                return;
            }
            all = _syncedKinds.Count == McpObjects.Kinds.Length;
        }
        if (all && !_source.Synced.IsCompleted)
        {
            _source.MarkSynced();
            Log.Synced(_logger, _options.Name);
        }
    }

    private void ArmStaleTimer()
    {
        lock (_gate)
        {
            if (!_withdrawn)
            {
                _staleTimer ??= _time.CreateTimer(_ => Withdraw(), null, _options.StaleAfter, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void DisarmStaleTimer()
    {
        _staleTimer?.Dispose();
        _staleTimer = null;
    }

    /// <summary>The registry has been away for StaleAfter: its objects leave the mesh until it answers again.</summary>
    private void Withdraw()
    {
        lock (_gate)
        {
            if (_staleTimer is null)
            {
                return; // the registry answered meanwhile
            }
            DisarmStaleTimer();
            if (_stopping is null || _stopping.IsCancellationRequested)
            {
                return;
            }
            if (_connected)
            {
                // Connected, but some kind never answered (a registry that serves only ServiceEntry): ready with what it sent.
                if (!_source.Synced.IsCompleted)
                {
                    _source.MarkSynced();
                    Log.SyncedPartly(_logger, _options.Name, string.Join(", ", McpObjects.Kinds.Except(_syncedKinds)), _options.StaleAfter);
                }
                return;
            }
            _withdrawn = true;
            foreach (string kind in McpObjects.Kinds)
            {
                _held[kind] = new Dictionary<string, KubeObject>(StringComparer.Ordinal);
            }
            _versions.Clear();
            _source.Replace(MeshResources.Empty);
        }
        string message = $"registry {_connection.Address} unreachable for {_options.StaleAfter}: its objects are withdrawn until it answers again";
        _source.ReportError(message);
        Log.Withdrawn(_logger, _options.Name, _connection.Address.ToString(), _options.StaleAfter);
        if (!_source.Synced.IsCompleted)
        {
            // Readiness stops waiting for a registry that is not there; the others carry on.
            _source.MarkSynced();
        }
    }

    /// <summary>True while the registry's objects are withdrawn because it has been away longer than StaleAfter.</summary>
    public bool Withdrawn
    {
        get
        {
            lock (_gate)
            {
                return _withdrawn;
            }
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopping is not null)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }
        lock (_gate)
        {
            DisarmStaleTimer();
        }
        await _run.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            DisarmStaleTimer();
        }
        _stopping?.Dispose();
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The node the agent presents to registries: the identity it has towards istiod, when it knows it.</summary>
    internal static Node NodeFor(ControlPlaneOptions? cp, string fallbackId)
    {
        var metadata = new Struct();
        if (cp is not null)
        {
            metadata.Fields["NAMESPACE"] = Value.ForString(cp.PodNamespace);
            metadata.Fields["NODE_NAME"] = Value.ForString(cp.NodeName);
            metadata.Fields["CLUSTER_ID"] = Value.ForString(cp.ClusterId);
        }
        string id = cp is not null && cp.PodName.Length > 0 ? cp.NodeId : fallbackId;
        return new Node { Id = id, Metadata = metadata, UserAgentName = "ambient-ztunnel" };
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 150, Level = LogLevel.Information, Message = "mcp source {Registry}: StreamAggregatedResources to {Address} (precedence {Precedence})")]
        public static partial void Started(ILogger logger, string registry, string address, int precedence);

        [LoggerMessage(EventId = 151, Level = LogLevel.Information, Message = "mcp source {Registry}: first snapshot of every kind applied")]
        public static partial void Synced(ILogger logger, string registry);

        [LoggerMessage(EventId = 156, Level = LogLevel.Warning, Message = "mcp source {Registry}: no {Kinds} snapshot within {StaleAfter}; ready with what the registry sent")]
        public static partial void SyncedPartly(ILogger logger, string registry, string kinds, TimeSpan staleAfter);

        [LoggerMessage(EventId = 152, Level = LogLevel.Debug, Message = "mcp source {Registry}: {Type}: {Applied} resources applied (version {Version}, nonce {Nonce})")]
        public static partial void Applied(ILogger logger, string registry, string type, int applied, string version, string nonce);

        [LoggerMessage(EventId = 153, Level = LogLevel.Warning, Message = "mcp source {Registry}: NACK {Type}: {Count} resources refused, the rest applied: {Errors}")]
        public static partial void Nacked(ILogger logger, string registry, string type, int count, string errors);

        [LoggerMessage(EventId = 154, Level = LogLevel.Warning, Message = "mcp source {Registry}: stream to {Address} failed, keeping the last state: {Reason}")]
        public static partial void StreamFailed(ILogger logger, string registry, string address, string reason);

        [LoggerMessage(EventId = 155, Level = LogLevel.Warning, Message = "mcp source {Registry}: {Address} unreachable for {StaleAfter}: its objects are withdrawn until it answers again")]
        public static partial void Withdrawn(ILogger logger, string registry, string address, TimeSpan staleAfter);
    }
}
