using System.Collections.Immutable;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Model;
using Ambient.Mesh.Protos.Envoy;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pw = Ambient.Mesh.Protos.Istio.Workload;
using Ps = Ambient.Mesh.Protos.Istio.Security;

namespace Ambient.Mesh.Sources.Xds;

/// <summary>
/// Istio's control plane as a mesh source, the way Istio's ztunnel consumes it: one Delta ADS stream subscribing (as
/// a wildcard) to <c>istio.workload.Address</c> and <c>istio.security.Authorization</c>. Every response is answered with
/// its nonce: an ACK, or a NACK whose error_detail names each resource refused and why while the valid ones of the same
/// response still apply (a refused resource keeps its last good version). A broken stream is re-opened after a jittered
/// back-off, sending the versions held in <c>initial_resource_versions</c>; the state stays meanwhile, so the agent keeps
/// serving. Readiness waits until the first response of each type has been applied and answered. With
/// <see cref="ControlPlaneOptions.OnDemand"/> addresses are not pushed wholesale but asked for one by one
/// (<see cref="DemandAddressAsync"/>, in XdsSource.OnDemand.cs).
/// </summary>
public sealed partial class XdsSource : IHostedService, IAsyncDisposable
{
    public const string AddressType = "type.googleapis.com/istio.workload.Address";
    public const string AuthorizationType = "type.googleapis.com/istio.security.Authorization";

    /// <summary>The cluster's view, like the Kubernetes API source (30): a local file (40, 50) can override it.</summary>
    public const int DefaultPrecedence = 30;

    private static readonly string[] Types = [AddressType, AuthorizationType];

    private readonly ControlPlaneOptions _options;
    private readonly ControlPlaneConnection _connection;
    private readonly AggregatedDiscoveryService.AggregatedDiscoveryServiceClient _client;
    private readonly MeshSource _source;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    // Per type: resource name -> what it became in the store, and the version held.
    private readonly Dictionary<string, Dictionary<string, Held>> _held = new(StringComparer.Ordinal)
    {
        [AddressType] = new(StringComparer.Ordinal),
        [AuthorizationType] = new(StringComparer.Ordinal),
    };
    private readonly Dictionary<string, string> _refused = new(StringComparer.Ordinal);
    private readonly HashSet<string> _syncedTypes = new(StringComparer.Ordinal);
    // The types whose first response readiness waits for: an on-demand type has no "first push" (Istio's ztunnel too).
    private readonly string[] _requiredTypes;
    private bool _syncMarked;
    private CancellationTokenSource? _stopping;
    private Task _run = Task.CompletedTask;
    private long _acks;
    private long _nacks;
    private long _connects;

    private enum Kind
    {
        Workload,
        Service,
        Policy,
    }

    private readonly record struct Held(string Version, Kind Kind, string Key);

    public XdsSource(MeshStore store, ControlPlaneOptions options, ControlPlaneConnection connection, ILogger logger, int precedence = DefaultPrecedence)
    {
        _options = options;
        _connection = connection;
        _client = new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(connection.Channel);
        _logger = logger;
        _source = store.AddSource($"xds:{connection.Address}", precedence);
        _requiredTypes = options.OnDemand ? [AuthorizationType] : Types;
    }

    public MeshSource Source => _source;

    /// <summary>Reconnect delays (tests shorten them).</summary>
    public Backoff Backoff { get; init; } = Backoff.Istio;

    /// <summary>Responses accepted whole, responses refused in part, and streams opened (for /config_dump and tests).</summary>
    public (long Acks, long Nacks, long Connects) Counters => (Interlocked.Read(ref _acks), Interlocked.Read(ref _nacks), Interlocked.Read(ref _connects));

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.OnDemand)
        {
            Log.OnDemandEnabled(_logger, _options.OnDemandTimeout.TotalMilliseconds, OnDemandNegativeTtl.TotalMilliseconds);
        }
        _stopping = new CancellationTokenSource();
        Log.Started(_logger, _connection.Address.ToString(), _options.NodeId);
        _run = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private Task RunAsync(CancellationToken ct) => _connection.RunStreamAsync(
        Backoff,
        StreamAsync,
        reason =>
        {
            _source.ReportError($"control plane stream to {_connection.Address} failed, keeping the last state: {reason}");
            Log.StreamFailed(_logger, _connection.Address.ToString(), reason);
        },
        disconnected: null,
        ct);

    private async Task StreamAsync(Action answered, CancellationToken ct)
    {
        using AsyncDuplexStreamingCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse> call =
            _client.DeltaAggregatedResources(new CallOptions(headers: _connection.Headers(), cancellationToken: ct));
        Interlocked.Increment(ref _connects);
        // On-demand subscriptions write to this stream from connection handlers: one writer at a time. The stream is
        // published before the initial requests are built, so a name demanded meanwhile is either in them or sent after.
        try
        {
            await _writeLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                lock (_gate)
                {
                    _writer = call.RequestStream;
                }
                foreach (string type in Types)
                {
                    await call.RequestStream.WriteAsync(InitialRequest(type), ct).ConfigureAwait(false);
                }
            }
            finally
            {
                _writeLock.Release();
            }
            await foreach (DeltaDiscoveryResponse response in call.ResponseStream.ReadAllAsync(ct).ConfigureAwait(false))
            {
                DeltaDiscoveryRequest reply = Handle(response);
                await WriteAsync(call.RequestStream, reply, ct).ConfigureAwait(false);
                answered();
                MarkTypeSynced(response.TypeUrl);
            }
        }
        finally
        {
            lock (_gate)
            {
                _writer = null;
            }
        }
        throw new IOException("the control plane ended the stream");
    }

    private async Task WriteAsync(IClientStreamWriter<DeltaDiscoveryRequest> writer, DeltaDiscoveryRequest request, CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await writer.WriteAsync(request, ct).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private DeltaDiscoveryRequest InitialRequest(string type)
    {
        var request = new DeltaDiscoveryRequest { TypeUrl = type, Node = Node() };
        lock (_gate)
        {
            foreach ((string name, Held held) in _held[type])
            {
                request.InitialResourceVersions[name] = held.Version;
            }
            if (type == AddressType && _options.OnDemand)
            {
                // Delta xDS has no "subscribe to nothing": an empty list is the wildcard. Istio's ztunnel subscribes and
                // unsubscribes "*" in one request; the names it already asked for ride in initial_resource_versions
                // (no version for those it holds under another name or has not received yet).
                request.ResourceNamesSubscribe.Add("*");
                request.ResourceNamesUnsubscribe.Add("*");
                foreach (string name in _demanded)
                {
                    request.InitialResourceVersions.TryAdd(name, "");
                }
            }
        }
        return request;
    }

    /// <summary>The node as Istio's ztunnel describes itself (istiod keys its per-node push on it).</summary>
    internal Protos.Envoy.Node Node()
    {
        var metadata = new Struct();
        foreach ((string key, string value) in _options.IstioMeta)
        {
            metadata.Fields[key] = Value.ForString(value);
        }
        metadata.Fields["NAME"] = Value.ForString(_options.PodName);
        metadata.Fields["NAMESPACE"] = Value.ForString(_options.PodNamespace);
        metadata.Fields["INSTANCE_IPS"] = Value.ForString(_options.InstanceIp);
        metadata.Fields["NODE_NAME"] = Value.ForString(_options.NodeName);
        metadata.Fields["CLUSTER_ID"] = Value.ForString(_options.ClusterId);
        return new Protos.Envoy.Node { Id = _options.NodeId, Metadata = metadata, UserAgentName = "ambient-ztunnel" };
    }

    /// <summary>Applies one response (the valid resources, the removals) and builds its ACK or NACK.</summary>
    private DeltaDiscoveryRequest Handle(DeltaDiscoveryResponse response)
    {
        var errors = new List<string>();
        var workloads = ImmutableArray.CreateBuilder<Workload>();
        var services = ImmutableArray.CreateBuilder<Service>();
        var policies = ImmutableArray.CreateBuilder<AuthorizationPolicy>();
        var removedWorkloads = ImmutableArray.CreateBuilder<string>();
        var removedServices = ImmutableArray.CreateBuilder<string>();
        var removedPolicies = ImmutableArray.CreateBuilder<string>();
        List<(TaskCompletionSource<bool> Waiter, string Name, bool Found)>? answers = null;
        void Withdraw(Held h)
        {
            (h.Kind switch { Kind.Workload => removedWorkloads, Kind.Service => removedServices, _ => removedPolicies }).Add(h.Key);
        }

        lock (_gate)
        {
            if (!_held.TryGetValue(response.TypeUrl, out Dictionary<string, Held>? held))
            {
                Interlocked.Increment(ref _nacks);
                Log.Nacked(_logger, response.TypeUrl, 1, $"{response.TypeUrl}: not a type this agent subscribes to");
                return Nack(response, $"{response.TypeUrl}: not a type this agent subscribes to");
            }
            string shortType = response.TypeUrl[(response.TypeUrl.LastIndexOf('/') + 1)..];
            if (response.TypeUrl == AddressType)
            {
                answers = TakeAnswers(response);
            }
            foreach (string name in response.RemovedResources)
            {
                if (held.Remove(name, out Held h))
                {
                    Withdraw(h);
                }
                _refused.Remove($"{shortType}/{name}");
            }
            foreach (Resource resource in response.Resources)
            {
                string id = $"{shortType}/{resource.Name}";
                try
                {
                    Held next = Translate(response.TypeUrl, resource, workloads, services, policies);
                    // A name whose object changed kind or key (a workload's uid, say) withdraws the old entry.
                    if (held.TryGetValue(resource.Name, out Held old) && (old.Kind != next.Kind || old.Key != next.Key))
                    {
                        Withdraw(old);
                    }
                    held[resource.Name] = next;
                    _refused.Remove(id);
                }
                catch (Exception ex) when (ex is XdsResourceException or Google.Protobuf.InvalidProtocolBufferException)
                {
                    string error = $"{id}: {ex.Message}";
                    errors.Add(error);
                    _refused[id] = error;
                }
            }
        }
        _source.Apply(new MeshDelta
        {
            Upserts = new MeshResources { Workloads = workloads.ToImmutable(), Services = services.ToImmutable(), Policies = policies.ToImmutable() },
            RemovedWorkloads = removedWorkloads.ToImmutable(),
            RemovedServices = removedServices.ToImmutable(),
            RemovedPolicies = removedPolicies.ToImmutable(),
        });
        ReportStatus();
        if (answers is not null)
        {
            // After the store has the answer: a connection woken here finds the address when it looks again.
            Wake(answers);
        }
        Log.Applied(_logger, response.TypeUrl, response.Resources.Count - errors.Count, response.RemovedResources.Count, response.Nonce);
        if (errors.Count == 0)
        {
            Interlocked.Increment(ref _acks);
            return new DeltaDiscoveryRequest { TypeUrl = response.TypeUrl, ResponseNonce = response.Nonce };
        }
        Interlocked.Increment(ref _nacks);
        string message = string.Join("; ", errors);
        Log.Nacked(_logger, response.TypeUrl, errors.Count, message);
        return Nack(response, message);
    }

    private static DeltaDiscoveryRequest Nack(DeltaDiscoveryResponse response, string message) => new()
    {
        TypeUrl = response.TypeUrl,
        ResponseNonce = response.Nonce,
        ErrorDetail = new Protos.Google.Status { Code = (int)StatusCode.InvalidArgument, Message = message },
    };

    private static Held Translate(
        string type, Resource resource,
        ImmutableArray<Workload>.Builder workloads, ImmutableArray<Service>.Builder services, ImmutableArray<AuthorizationPolicy>.Builder policies)
    {
        if (resource.Resource_ is not { } any)
        {
            throw new XdsResourceException("the resource has no body");
        }
        if (any.TypeUrl != type)
        {
            throw new XdsResourceException($"the body is a {any.TypeUrl}, not a {type}");
        }
        if (type == AddressType)
        {
            Pw.Address address = Pw.Address.Parser.ParseFrom(any.Value);
            switch (address.TypeCase)
            {
                case Pw.Address.TypeOneofCase.Workload:
                    Workload w = XdsTranslator.ToWorkload(address.Workload);
                    workloads.Add(w);
                    return new Held(resource.Version, Kind.Workload, w.Uid);
                case Pw.Address.TypeOneofCase.Service:
                    Service s = XdsTranslator.ToService(address.Service);
                    services.Add(s);
                    return new Held(resource.Version, Kind.Service, s.Key);
                default:
                    throw new XdsResourceException("the address is neither a workload nor a service");
            }
        }
        AuthorizationPolicy p = XdsTranslator.ToPolicy(Ps.Authorization.Parser.ParseFrom(any.Value));
        policies.Add(p);
        return new Held(resource.Version, Kind.Policy, p.Key);
    }

    private void ReportStatus()
    {
        string[] refused;
        lock (_gate)
        {
            refused = [.. _refused.Values.Order(StringComparer.Ordinal)];
        }
        if (refused.Length == 0)
        {
            _source.ReportSuccess();
        }
        else
        {
            _source.ReportError($"{refused.Length} control plane resources refused (NACKed; the rest applied)", refused);
        }
    }

    private void MarkTypeSynced(string type)
    {
        bool all;
        lock (_gate)
        {
            if (!_held.ContainsKey(type) || !_syncedTypes.Add(type) || _syncMarked)
            {
                return;
            }
            all = _syncMarked = _requiredTypes.All(_syncedTypes.Contains);
        }
        if (all)
        {
            _source.MarkSynced();
            Log.Synced(_logger, _connection.Address.ToString());
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopping is not null)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }
        await _run.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        _stopping?.Dispose();
        _writeLock.Dispose();
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 140, Level = LogLevel.Information, Message = "xds source: Delta ADS to {Address} as {NodeId}")]
        public static partial void Started(ILogger logger, string address, string nodeId);

        [LoggerMessage(EventId = 141, Level = LogLevel.Information, Message = "xds source: initial push of every type applied ({Address})")]
        public static partial void Synced(ILogger logger, string address);

        [LoggerMessage(EventId = 142, Level = LogLevel.Debug, Message = "xds source: {Type}: {Applied} applied, {Removed} removed (nonce {Nonce})")]
        public static partial void Applied(ILogger logger, string type, int applied, int removed, string nonce);

        [LoggerMessage(EventId = 143, Level = LogLevel.Warning, Message = "xds source: NACK {Type}: {Count} resources refused, the rest applied: {Errors}")]
        public static partial void Nacked(ILogger logger, string type, int count, string errors);

        [LoggerMessage(EventId = 144, Level = LogLevel.Warning, Message = "xds source: stream to {Address} failed, keeping the last state and reconnecting: {Reason}")]
        public static partial void StreamFailed(ILogger logger, string address, string reason);

        [LoggerMessage(EventId = 145, Level = LogLevel.Information, Message = "xds source: on-demand addresses (XDS_ON_DEMAND): a connection waits up to {TimeoutMs} ms for an unknown address; a negative answer is kept {NegativeMs} ms")]
        public static partial void OnDemandEnabled(ILogger logger, double timeoutMs, double negativeMs);

        [LoggerMessage(EventId = 146, Level = LogLevel.Debug, Message = "xds source: on-demand subscribe to address {Name}")]
        public static partial void DemandSent(ILogger logger, string name);

        [LoggerMessage(EventId = 147, Level = LogLevel.Debug, Message = "xds source: on-demand address {Name} answered ({Outcome})")]
        public static partial void DemandAnswered(ILogger logger, string name, string outcome);

        [LoggerMessage(EventId = 148, Level = LogLevel.Information, Message = "xds source: no answer for on-demand address {Name} within {TimeoutMs} ms; proceeding with what the store holds")]
        public static partial void DemandTimedOut(ILogger logger, string name, double timeoutMs);
    }
}
