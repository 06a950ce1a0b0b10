using System.Threading.Channels;
using Ambient.Mesh.Protos.Envoy;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Pm = Ambient.Mesh.Protos.Istio.Mcp;

namespace Ambient.Mesh.Tests.ControlPlane.Support;

/// <summary>
/// An in-process MCP server on loopback (Kestrel, HTTP/2 cleartext, Grpc.AspNetCore) built from the agent's protos, the
/// way a registry such as Nacos serves Istio: state-of-the-world ADS, the GVK type URL asked for, each resource an
/// istio.mcp.v1alpha1.Resource, every push the whole set of its type. Records what the client sends.
/// </summary>
internal sealed class FakeMcpServer : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, SortedDictionary<string, Any>> _state = new(StringComparer.Ordinal);
    private readonly List<McpStream> _streams = [];
    private readonly List<(DiscoveryRequest Request, int Stream)> _requests = [];
    private GrpcTestHost? _host;
    private long _version;
    private long _nonce;
    private int _streamCount;

    public Uri Url { get; private set; } = null!;

    /// <summary>Type URLs this server never answers (a registry that serves only some kinds).</summary>
    public HashSet<string> Unserved { get; } = new(StringComparer.Ordinal);

    public static async Task<FakeMcpServer> StartAsync()
    {
        var server = new FakeMcpServer();
        server._host = await GrpcTestHost.StartAsync(
            services => services.AddSingleton(server).AddSingleton<AdsService>(),
            app => app.MapGrpcService<AdsService>());
        server.Url = server._host.Url;
        return server;
    }

    /// <summary>An MCP resource "ns/name" whose body is <paramref name="body"/>.</summary>
    public static Any Wrap(string fullName, IMessage body, string version = "1") =>
        Any.Pack(new Pm.Resource { Metadata = new Pm.Metadata { Name = fullName, Version = version }, Body = Any.Pack(body) });

    /// <summary>Adds or replaces a resource and pushes the whole set of its type.</summary>
    public void Set(string typeUrl, string fullName, IMessage body) =>
        SetRaw(typeUrl, fullName, Wrap(fullName, body, Interlocked.Increment(ref _version).ToString(System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Adds or replaces an entry as given (also an invalid one) and pushes the whole set of its type.</summary>
    public void SetRaw(string typeUrl, string key, Any resource)
    {
        lock (_gate)
        {
            Table(typeUrl)[key] = resource;
            Broadcast(typeUrl);
        }
    }

    /// <summary>Removes an entry and pushes the set without it.</summary>
    public void Remove(string typeUrl, string key)
    {
        lock (_gate)
        {
            Table(typeUrl).Remove(key);
            Broadcast(typeUrl);
        }
    }

    public IReadOnlyList<(DiscoveryRequest Request, int Stream)> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests];
            }
        }
    }

    private SortedDictionary<string, Any> Table(string typeUrl)
    {
        if (!_state.TryGetValue(typeUrl, out var table))
        {
            _state[typeUrl] = table = new SortedDictionary<string, Any>(StringComparer.Ordinal);
        }
        return table;
    }

    private void Broadcast(string typeUrl)
    {
        foreach (McpStream s in _streams)
        {
            if (s.Types.Contains(typeUrl))
            {
                s.Outbox.Writer.TryWrite(Snapshot(typeUrl));
            }
        }
    }

    private DiscoveryResponse Snapshot(string typeUrl)
    {
        var response = new DiscoveryResponse
        {
            TypeUrl = typeUrl,
            VersionInfo = "v" + Interlocked.Increment(ref _version).ToString(System.Globalization.CultureInfo.InvariantCulture),
            Nonce = "m" + Interlocked.Increment(ref _nonce).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        response.Resources.Add(Table(typeUrl).Values);
        return response;
    }

    private sealed class McpStream(int id)
    {
        public int Id { get; } = id;
        public HashSet<string> Types { get; } = new(StringComparer.Ordinal);
        public Channel<DiscoveryResponse> Outbox { get; } = Channel.CreateUnbounded<DiscoveryResponse>();
    }

    private async Task ServeAsync(IAsyncStreamReader<DiscoveryRequest> requests, IServerStreamWriter<DiscoveryResponse> responses, ServerCallContext context)
    {
        var stream = new McpStream(Interlocked.Increment(ref _streamCount));
        lock (_gate)
        {
            _streams.Add(stream);
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        Task writer = Task.Run(async () =>
        {
            await foreach (DiscoveryResponse r in stream.Outbox.Reader.ReadAllAsync(cts.Token))
            {
                await responses.WriteAsync(r, cts.Token);
            }
        });
        try
        {
            await foreach (DiscoveryRequest request in requests.ReadAllAsync(cts.Token))
            {
                lock (_gate)
                {
                    _requests.Add((request.Clone(), stream.Id));
                    // The first request of a type subscribes; ACKs and NACKs only answer a push.
                    if (request.ResponseNonce.Length == 0 && !Unserved.Contains(request.TypeUrl) && stream.Types.Add(request.TypeUrl))
                    {
                        stream.Outbox.Writer.TryWrite(Snapshot(request.TypeUrl));
                    }
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                _streams.Remove(stream);
            }
            await cts.CancelAsync();
            try
            {
                await writer;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }
    }

    internal sealed class AdsService(FakeMcpServer server) : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
    {
        public override Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context) =>
            server.ServeAsync(requestStream, responseStream, context);
    }
}
