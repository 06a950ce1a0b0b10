using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Ambient.Mesh.Protos.Envoy;
using Ambient.Mesh.Protos.Istio.Ca;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Ambient.Mesh.Tests.ControlPlane.Support;

/// <summary>
/// An in-process stand-in for istiod on loopback (Kestrel, HTTP/2 cleartext, Grpc.AspNetCore) built from the agent's own
/// protos: Delta ADS the way istiod serves ztunnel (wildcard subscriptions, per-resource versions, nonces, removals,
/// initial_resource_versions honoured on reconnect; on-demand subscriptions by name or alias, unknown names answered in
/// removed_resources, as istiod does for ztunnel's XDS_ON_DEMAND) and the Istio CA (signs the CSR with a root of its own). Everything
/// the agent sends is recorded for the tests to check.
/// </summary>
internal sealed class FakeIstiod : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, SortedDictionary<string, Resource>> _state = new(StringComparer.Ordinal);
    private readonly List<XdsStream> _streams = [];
    private readonly List<(DeltaDiscoveryRequest Request, int Stream)> _requests = [];
    private readonly List<(string? Authorization, string? ClusterId)> _calls = [];
    private readonly List<IstioCertificateRequest> _csrs = [];
    private GrpcTestHost? _host;
    private long _version;
    private long _nonce;
    private int _streamCount;

    private FakeIstiod()
    {
        using ECDsa rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Fake Istio Root", rootKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        Root = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    public Uri Url { get; private set; } = null!;

    /// <summary>The CA root (with its key); the last entry of every chain it returns.</summary>
    public X509Certificate2 Root { get; }

    /// <summary>While false, on-demand subscriptions are recorded but never answered (a control plane that stays silent).</summary>
    public volatile bool AnswerOnDemand = true;

    /// <summary>While false, CreateCertificate fails with UNAVAILABLE (an outage).</summary>
    public volatile bool CaAvailable = true;

    /// <summary>When set, the CA signs this SAN instead of the one requested (a CA the client must not trust blindly).</summary>
    public volatile string? ForceSan;

    /// <param name="serverCertificate">Serve https (HTTP/2 over TLS) with this certificate; null = HTTP/2 cleartext.</param>
    public static async Task<FakeIstiod> StartAsync(X509Certificate2? serverCertificate = null)
    {
        var server = new FakeIstiod();
        server._host = await GrpcTestHost.StartAsync(
            services => services.AddSingleton(server).AddSingleton<XdsService>().AddSingleton<CaService>(),
            app =>
            {
                app.MapGrpcService<XdsService>();
                app.MapGrpcService<CaService>();
            },
            serverCertificate);
        server.Url = server._host.Url;
        return server;
    }

    // ---- xDS state -------------------------------------------------------------------------------------------------

    /// <summary>Adds or replaces a resource (new version) and pushes it to every connected stream.</summary>
    /// <param name="aliases">Other names the resource answers to (istiod lists a workload's <c>network/ip</c> keys).</param>
    public void Set(string typeUrl, string name, IMessage message, params string[] aliases)
    {
        var resource = new Resource { Name = name, Version = Interlocked.Increment(ref _version).ToString(System.Globalization.CultureInfo.InvariantCulture), Resource_ = Any.Pack(message) };
        resource.Aliases.Add(aliases);
        lock (_gate)
        {
            Table(typeUrl)[name] = resource;
            Broadcast(typeUrl, [resource], []);
        }
    }

    /// <summary>Removes a resource and pushes the removal.</summary>
    public void Remove(string typeUrl, string name)
    {
        lock (_gate)
        {
            Table(typeUrl).Remove(name);
            Broadcast(typeUrl, [], [name]);
        }
    }

    /// <summary>Changes state without pushing (what changed while an agent was away).</summary>
    public void RemoveQuietly(string typeUrl, string name)
    {
        lock (_gate)
        {
            Table(typeUrl).Remove(name);
        }
    }

    /// <summary>Pushes resources as given (also invalid ones) without keeping them; returns the response nonce.</summary>
    public string PushRaw(string typeUrl, params Resource[] resources)
    {
        lock (_gate)
        {
            return Broadcast(typeUrl, resources, []);
        }
    }

    /// <summary>
    /// Ends every open stream with UNAVAILABLE (istiod restarting); the state stays. With <paramref name="closeConnections"/>
    /// their HTTP/2 connections are closed too (GOAWAY), so the client must connect, and for https handshake, again.
    /// </summary>
    public void DropStreams(bool closeConnections = false)
    {
        lock (_gate)
        {
            foreach (XdsStream s in _streams)
            {
                if (closeConnections)
                {
                    s.Connection?.RequestClose();
                }
                s.Abort.Cancel();
            }
            _streams.Clear();
        }
    }

    public IReadOnlyList<(DeltaDiscoveryRequest Request, int Stream)> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests];
            }
        }
    }

    public IReadOnlyList<(string? Authorization, string? ClusterId)> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    public IReadOnlyList<IstioCertificateRequest> CertificateRequests
    {
        get
        {
            lock (_gate)
            {
                return [.. _csrs];
            }
        }
    }

    public int StreamCount => Volatile.Read(ref _streamCount);

    private SortedDictionary<string, Resource> Table(string typeUrl)
    {
        if (!_state.TryGetValue(typeUrl, out var table))
        {
            _state[typeUrl] = table = new SortedDictionary<string, Resource>(StringComparer.Ordinal);
        }
        return table;
    }

    private string Broadcast(string typeUrl, Resource[] resources, string[] removed)
    {
        string nonce = NextNonce();
        foreach (XdsStream s in _streams)
        {
            if (s.Types.Contains(typeUrl))
            {
                var response = new DeltaDiscoveryResponse { TypeUrl = typeUrl, Nonce = nonce };
                response.Resources.Add(resources.Where(r => s.Wants(typeUrl, r)));
                response.RemovedResources.Add(removed.Where(n => s.Wildcard.Contains(typeUrl) || s.Sent(typeUrl).Contains(n) || s.Names(typeUrl).Contains(n)));
                s.Track(typeUrl, response);
                if (response.Resources.Count > 0 || response.RemovedResources.Count > 0)
                {
                    s.Outbox.Writer.TryWrite(response);
                }
            }
        }
        return nonce;
    }

    private string NextNonce() => "n" + Interlocked.Increment(ref _nonce).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private sealed class XdsStream(int id)
    {
        public int Id { get; } = id;
        public HashSet<string> Types { get; } = new(StringComparer.Ordinal);
        public Channel<DeltaDiscoveryResponse> Outbox { get; } = Channel.CreateUnbounded<DeltaDiscoveryResponse>();
        public CancellationTokenSource Abort { get; } = new();
        public Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeNotificationFeature? Connection { get; init; }

        /// <summary>Types subscribed as a wildcard; for the others, the names subscribed and the names sent.</summary>
        public HashSet<string> Wildcard { get; } = new(StringComparer.Ordinal);
        private readonly Dictionary<string, HashSet<string>> _names = new(StringComparer.Ordinal);
        private readonly Dictionary<string, HashSet<string>> _sent = new(StringComparer.Ordinal);

        public HashSet<string> Names(string type) => _names.TryGetValue(type, out var n) ? n : _names[type] = new(StringComparer.Ordinal);

        public HashSet<string> Sent(string type) => _sent.TryGetValue(type, out var n) ? n : _sent[type] = new(StringComparer.Ordinal);

        public bool Wants(string type, Resource r) =>
            Wildcard.Contains(type) || Sent(type).Contains(r.Name) || Names(type).Contains(r.Name) || r.Aliases.Any(Names(type).Contains);

        public void Track(string type, DeltaDiscoveryResponse response)
        {
            foreach (Resource r in response.Resources)
            {
                Sent(type).Add(r.Name);
            }
            foreach (string n in response.RemovedResources)
            {
                Sent(type).Remove(n);
            }
        }
    }

    private static bool Matches(Resource r, string name) => r.Name == name || r.Aliases.Contains(name);

    private async Task ServeDeltaAsync(IAsyncStreamReader<DeltaDiscoveryRequest> requests, IServerStreamWriter<DeltaDiscoveryResponse> responses, ServerCallContext context)
    {
        var stream = new XdsStream(Interlocked.Increment(ref _streamCount))
        {
            Connection = context.GetHttpContext().Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeNotificationFeature>(),
        };
        lock (_gate)
        {
            _streams.Add(stream);
            _calls.Add((context.RequestHeaders.GetValue("authorization"), context.RequestHeaders.GetValue("clusterid")));
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, stream.Abort.Token);
        Task writer = Task.Run(async () =>
        {
            await foreach (DeltaDiscoveryResponse r in stream.Outbox.Reader.ReadAllAsync(cts.Token))
            {
                await responses.WriteAsync(r, cts.Token);
            }
        });
        try
        {
            await foreach (DeltaDiscoveryRequest request in requests.ReadAllAsync(cts.Token))
            {
                lock (_gate)
                {
                    _requests.Add((request.Clone(), stream.Id));
                    if (request.ResponseNonce.Length == 0 && stream.Types.Add(request.TypeUrl))
                    {
                        // Wildcard: an empty subscribe list, or "*" subscribed and not also unsubscribed (ztunnel's
                        // on-demand "subscribe to nothing"). Otherwise the names asked for, including those the client
                        // says it holds (initial_resource_versions).
                        string type = request.TypeUrl;
                        bool wildcard = (request.ResourceNamesSubscribe.Count == 0 && request.ResourceNamesUnsubscribe.Count == 0)
                            || (request.ResourceNamesSubscribe.Contains("*") && !request.ResourceNamesUnsubscribe.Contains("*"));
                        if (wildcard)
                        {
                            stream.Wildcard.Add(type);
                        }
                        else
                        {
                            stream.Names(type).UnionWith(request.ResourceNamesSubscribe.Where(n => n != "*"));
                            stream.Names(type).UnionWith(request.InitialResourceVersions.Keys);
                        }
                        // The initial push: what the client lacks or holds at another version, and the removal of what
                        // it holds that is gone (how istiod treats initial_resource_versions).
                        var table = Table(type);
                        var response = new DeltaDiscoveryResponse { TypeUrl = type, Nonce = NextNonce() };
                        foreach (Resource r in table.Values)
                        {
                            if (stream.Wants(type, r) && (!request.InitialResourceVersions.TryGetValue(r.Name, out string? v) || v != r.Version))
                            {
                                response.Resources.Add(r);
                            }
                        }
                        foreach (string name in request.InitialResourceVersions.Keys)
                        {
                            if (!table.Values.Any(r => Matches(r, name)))
                            {
                                response.RemovedResources.Add(name);
                            }
                        }
                        stream.Track(type, response);
                        stream.Outbox.Writer.TryWrite(response);
                    }
                    else if (request.ResponseNonce.Length == 0 && request.ResourceNamesSubscribe.Count > 0)
                    {
                        // An on-demand subscription: the resources under those names (or aliases); a name nothing
                        // answers to comes back in removed_resources.
                        string type = request.TypeUrl;
                        stream.Names(type).UnionWith(request.ResourceNamesSubscribe);
                        if (AnswerOnDemand)
                        {
                            var table = Table(type);
                            var response = new DeltaDiscoveryResponse { TypeUrl = type, Nonce = NextNonce() };
                            foreach (string name in request.ResourceNamesSubscribe)
                            {
                                var found = table.Values.Where(r => Matches(r, name)).ToList();
                                response.Resources.Add(found.Where(r => !response.Resources.Contains(r)));
                                if (found.Count == 0)
                                {
                                    response.RemovedResources.Add(name);
                                }
                            }
                            stream.Track(type, response);
                            stream.Outbox.Writer.TryWrite(response);
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stream.Abort.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "fake istiod restarting"));
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

    private IstioCertificateResponse Sign(IstioCertificateRequest request, ServerCallContext context)
    {
        lock (_gate)
        {
            _csrs.Add(request.Clone());
            _calls.Add((context.RequestHeaders.GetValue("authorization"), context.RequestHeaders.GetValue("clusterid")));
        }
        if (!CaAvailable)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "fake CA down"));
        }
        // Istio signs what the CSR asks for (after checking the caller may have that identity); so does this CA.
        CertificateRequest csr = CertificateRequest.LoadSigningRequestPem(
            request.Csr, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        if (ForceSan is { } forced)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddUri(new Uri(forced));
            csr.CertificateExtensions.Clear();
            csr.CertificateExtensions.Add(san.Build(critical: true));
        }
        csr.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        csr.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        csr.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        csr.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Root, true, false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using X509Certificate2 leaf = csr.Create(Root, now.AddMinutes(-1), now.AddSeconds(request.ValidityDuration), serial);
        return new IstioCertificateResponse { CertChain = { leaf.ExportCertificatePem(), Root.ExportCertificatePem() } };
    }

    public async ValueTask DisposeAsync()
    {
        DropStreams();
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }
        Root.Dispose();
    }

    internal sealed class XdsService(FakeIstiod server) : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
    {
        public override Task DeltaAggregatedResources(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context) =>
            server.ServeDeltaAsync(requestStream, responseStream, context);
    }

    internal sealed class CaService(FakeIstiod server) : IstioCertificateService.IstioCertificateServiceBase
    {
        public override Task<IstioCertificateResponse> CreateCertificate(IstioCertificateRequest request, ServerCallContext context) =>
            Task.FromResult(server.Sign(request, context));
    }
}
