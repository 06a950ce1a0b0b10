using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Policy;
using Ambient.Mesh.Sources;
using Ambient.Mesh.State;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Proxy;
using Ambient.Ztunnel.State;
using Ambient.Ztunnel.Telemetry;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel;

/// <summary>
/// The node agent: owns the config, identities, listeners, telemetry and the admin ports, and their lifecycle.
/// Start-up binds every listener before it reports ready; shutdown stops accepting, drains, then closes.
/// </summary>
internal sealed class Agent : IAsyncDisposable
{
    private readonly AgentOptions _options;
    private readonly ILogger _logger;
    private readonly ICertificateIssuer _issuer;
    private readonly CertificateManager _certificates;
    private readonly HbonePool _pool;
    private readonly ProxyContext _ctx;
    private readonly List<Listener> _listeners = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Memory.MemoryTrimmer _memory;
    private readonly TaskCompletionSource<string> _shutdownRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ConfigWatcher? _watcher;
    private AdminServer? _admin;
    private InPod.InPodManager? _inPod;
    private InPod.CniServer? _cniServer;
    private InPod.HandoverServer? _handover;
    private readonly string _stateDir;
    private readonly ILoggerFactory _loggers;
    private readonly MeshSource _configSource;
    private volatile bool _ready;
    private int _stopped;

    private Agent(AgentOptions options, MeshConfig config, ILoggerFactory loggers, LogLevelSwitch logLevel, MeshStore? store, MeshMetrics? metrics, Mesh.Sources.Xds.XdsSource? onDemand)
    {
        _options = options;
        LogLevel = logLevel;
        _logger = loggers.CreateLogger("ztunnel");
        Store = store ?? new MeshStore(loggers.CreateLogger<MeshStore>());
        Metrics = metrics ?? new MeshMetrics { Store = Store };
        Settings = config.Settings;
        var stateDir = config.StateDir ?? options.StateDir ?? AgentOptions.DefaultStateDir;
        _stateDir = stateDir;
        _loggers = loggers;
        _issuer = CreateIssuer(options.ControlPlane, config, stateDir);
        _certificates = new CertificateManager(_issuer, config.CertificateLifetime, TimeProvider.System, loggers.CreateLogger("identity"));
        _certificates.RenewalFailed += (id, ex) =>
        {
            Metrics.CertificateRenewalFailed();
            AgentLog.RenewalFailed(_logger, id, ex.Message);
        };
        _pool = new HbonePool(_certificates, new HbonePoolOptions(), loggers.CreateLogger("hbone"));
        _configSource = Store.AddSource(options.ConfigPath is { } p ? $"config:{p}" : "config:(embedded default)", ConfigSourcePrecedence);
        _configSource.Replace(config.Resources);
        _configSource.MarkSynced();
        State = new MeshState(Store, options.NodeName);
        var accessLog = new AccessLog(options.AccessLogWriter ?? Console.Out, options.AccessLog ?? config.AccessLog);
        _ctx = new ProxyContext
        {
            State = State,
            Resolver = new Resolver(config.TrustDomain),
            Certificates = _certificates,
            Pool = _pool,
            Metrics = Metrics,
            AccessLog = accessLog,
            Tracker = new ConnectionTracker(),
            Logger = loggers.CreateLogger("proxy"),
            Settings = Settings,
            Stopping = _stopping.Token,
            Refusals = new RefusalLog(Metrics, loggers.CreateLogger("proxy")),
            IdleHbone = new IdleHboneReaper(() => Settings.HboneIdleTimeout, Metrics),
            ResolveHost = options.ResolveHost ?? System.Net.Dns.GetHostAddressesAsync,
            OnDemand = onDemand is { OnDemand: true } ? onDemand : null,
        };
        State.Changed += OnConfigChanged;
        _memory = new Memory.MemoryTrimmer(
            () => _ctx.Tracker.Count + _ctx.Tracker.Handlers + _pool.ConnectionCount, // tunnels, accepted (HBONE served), pooled
            loggers.CreateLogger("memory"));
    }

    /// <summary>
    /// Istio's CA when a CA address is set (no node holds a CA key); otherwise the built-in CA, whose key lives in the
    /// state directory of every node (local mode; see README, "Certificates").
    /// </summary>
    private static ICertificateIssuer CreateIssuer(Mesh.ControlPlane.ControlPlaneOptions? cp, MeshConfig config, string stateDir)
    {
        if (cp?.CaAddress is { } ca)
        {
            string? own = cp.PodNamespace.Length > 0 && cp.ServiceAccount.Length > 0
                ? new SpiffeId(config.TrustDomain, cp.PodNamespace, cp.ServiceAccount).ToString()
                : null;
            return new IstioCaClient(new Mesh.ControlPlane.ControlPlaneConnection(ca, cp.CaRootCert, cp.TokenFile, cp.ClusterId), own);
        }
        return CertificateAuthority.LoadOrCreate(config.CaCertFile, config.CaKeyFile, stateDir, config.TrustDomain);
    }

    /// <summary>Precedence of the config file's own workloads, services and policies (see README: mesh sources).</summary>
    public const int ConfigSourcePrecedence = 50;

    public MeshState State { get; }

    public MeshStore Store { get; }

    /// <summary>Where workload certificates come from (the built-in CA or Istio's).</summary>
    internal ICertificateIssuer Issuer => _issuer;

    /// <summary>The restart-only settings the agent started with.</summary>
    public AgentSettings Settings { get; }

    public MeshMetrics Metrics { get; }

    public LogLevelSwitch LogLevel { get; }

    /// <summary>Listening, not draining, and every mesh source finished its initial sync.</summary>
    public bool Ready => _ready && !_stopping.IsCancellationRequested && Store.IsSynced;

    /// <summary>Bound endpoints by listener name (outbound, inbound, hbone, socks5, admin, metrics, readiness).</summary>
    public Dictionary<string, IPEndPoint> EndPoints { get; } = [];

    /// <summary>Completes with the reason when something asked the agent to stop (signal, /quitquitquit).</summary>
    public Task<string> ShutdownRequested => _shutdownRequested.Task;

    public ConnectionTracker Connections => _ctx.Tracker;

    /// <param name="store">The mesh store other sources (manifests, Kubernetes) feed; null = a store of the config file's own.</param>
    /// <param name="metrics">The process's metrics (the host's); null = the agent's own.</param>
    /// <param name="xds">The Istio xDS source feeding <paramref name="store"/>, if any: with XDS_ON_DEMAND, connections ask it for unknown addresses.</param>
    public static async Task<Agent> StartAsync(
        AgentOptions options, MeshConfig config, ILoggerFactory loggers, LogLevelSwitch logLevel, MeshStore? store = null, MeshMetrics? metrics = null,
        Mesh.Sources.Xds.XdsSource? xds = null)
    {
        var agent = new Agent(options, config, loggers, logLevel, store, metrics, xds);
        try
        {
            await agent.StartListenersAsync(config).ConfigureAwait(false);
        }
        catch
        {
            await agent.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return agent;
    }

    /// <summary>In-pod mode: the pods captured now (for tests and /config_dump).</summary>
    public int CapturedPods => _inPod?.CapturedCount ?? 0;

    private async Task StartListenersAsync(MeshConfig config)
    {
        var l = config.Listeners;
        var outbound = new Outbound(_ctx);
        var inbound = new Inbound(_ctx);
        var socks = new Socks5(_ctx, outbound);
        if (config.Mode == AgentMode.Shared)
        {
            Add("outbound", l.Outbound, s => outbound.HandleCapturedAsync(s, ProxyScope.Shared));
            Add("inbound", l.Inbound, s => inbound.HandlePlaintextAsync(s, ProxyScope.Shared));
            Add("hbone", l.Hbone, s => inbound.HandleHboneAsync(s, ProxyScope.Shared));
        }
        Add("socks5", l.Socks5, s => socks.HandleAsync(s, ProxyScope.Shared));
        if (config.Mode == AgentMode.InPod)
        {
            // Take the pods over (from a running agent with their sockets, else from the registry of a previous run)
            // before serving the CNI plugin, so a pod is never half-owned.
            // With the built-in CA the agent also signs for the waypoint pods on its node (their own identity only);
            // under Istio's CA they ask istiod themselves.
            _inPod = new InPod.InPodManager(_ctx, outbound, inbound, _stateDir, _loggers.CreateLogger("inpod"), _issuer as CertificateAuthority);
            string handoverPath = Path.Combine(_stateDir, "handover.sock");
            await _inPod.StartAsync(handoverPath, CancellationToken.None).ConfigureAwait(false);
            try
            {
                _cniServer = new InPod.CniServer(config.InPod.CniSocket, _inPod, _loggers.CreateLogger("cni"));
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                throw new InvalidOperationException($"cannot listen on the CNI socket {config.InPod.CniSocket}: {ex.SocketErrorCode}", ex);
            }
            try
            {
                _handover = new InPod.HandoverServer(handoverPath, _inPod, OnHandedOver, _loggers.CreateLogger("inpod"));
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                throw new InvalidOperationException($"cannot listen on the hand-over socket {handoverPath}: {ex.SocketErrorCode}", ex);
            }
        }

        _admin = new AdminServer(
            config.Listeners.Admin,
            config.Listeners.Metrics,
            config.Listeners.Readiness,
            Metrics,
            () => Ready,
            () => ConfigDump.Render(State.Current, Settings, Store.Sources, State.NodeName, _certificates.Snapshot(), _ctx.Tracker, _pool.ConnectionCount, State.IsLocal),
            reason => RequestShutdown(reason),
            LogLevel,
            _logger);
        EndPoints["admin"] = _admin.AdminEndPoint;
        EndPoints["metrics"] = _admin.MetricsEndPoint;
        EndPoints["readiness"] = _admin.ReadinessEndPoint;
        _ctx.OwnEndpoints.Add(_admin.AdminEndPoint);
        _ctx.OwnEndpoints.Add(_admin.MetricsEndPoint);
        _ctx.OwnEndpoints.Add(_admin.ReadinessEndPoint);

        if (_options.ConfigPath is { } path)
        {
            _watcher = new ConfigWatcher(path, OnConfigFileValid, OnConfigFileInvalid);
            _watcher.Start();
        }
        _ready = true;
        AgentLog.Ready(
            _logger,
            State.NodeName.Length == 0 ? "(all workloads local)" : State.NodeName,
            config.Mode.ToString().ToLowerInvariant(),
            State.Current.WorkloadCount,
            State.Current.Services.Count(),
            State.Current.Policies.Count(),
            string.Join(", ", EndPoints.Select(e => $"{e.Key}={e.Value}")));
        if (_cniServer is not null)
        {
            AgentLog.InPodReady(_logger,
                _cniServer.Path, _inPod!.CapturedCount,
                _inPod.TookOverFrom is { } pid ? $"taken over with their listening sockets from the running agent (pid {pid})" : "re-adopted",
                config.InPod.Firewall.ToString().ToLowerInvariant(), config.InPod.InboundCapture.ToString().ToLowerInvariant());
            // Serving now: the previous agent may let go of the sockets (it stops accepting, then drains).
            await _inPod.CompleteTakeoverAsync().ConfigureAwait(false);
        }
    }

    /// <summary>A newer agent on the node took every pod over: this one is no longer ready, drains and exits.</summary>
    private void OnHandedOver(int successorPid)
    {
        _ready = false;
        RequestShutdown($"handed over to a newer agent (pid {successorPid})");
    }

    private void Add(string name, IPEndPoint endpoint, Func<System.Net.Sockets.Socket, Task> handler)
    {
        var listener = new Listener(name, Listener.BindNamed(name, endpoint), handler, _logger, _ctx.Tracker);
        _listeners.Add(listener);
        EndPoints[name] = listener.EndPoint;
        _ctx.OwnEndpoints.Add(listener.EndPoint);
        listener.Start();
    }

    private void OnConfigFileValid(MeshConfig config) => ApplyConfig(config);

    /// <summary>Applies a valid config file's content, as a live edit of the watched file does.</summary>
    internal void ApplyConfig(MeshConfig config)
    {
        // Settings are restart-only: applying a new trust domain or listener set to a running agent would leave part of
        // it on the old value. The edit's mesh resources apply; the settings keep their running values.
        var changed = Settings.Differences(config.Settings);
        if (changed.Count > 0)
        {
            AgentLog.RestartOnlySettings(_logger, string.Join(", ", changed));
        }
        _configSource.Replace(config.Resources);
        _configSource.ReportSuccess();
        Metrics.ConfigReload(ok: true);
        AgentLog.ConfigReloaded(_logger,
            config.SourcePath, config.Workloads.Length, config.Services.Length, config.Policies.Length);
    }

    private void OnConfigFileInvalid(ImmutableArray<ConfigError> errors)
    {
        _configSource.ReportError($"config change rejected ({errors.Length} errors), keeping the last good config", errors.Select(e => e.ToString()));
        Metrics.ConfigReload(ok: false);
        AgentLog.ConfigRejected(_logger, errors.Length, string.Join("\n  ", errors));
    }

    /// <summary>Istio re-checks live connections when policy changes: close the ones now denied.</summary>
    private void OnConfigChanged(MeshSnapshot previous, MeshSnapshot next)
    {
        Metrics.ForgetLabelCache();
        DropUnusedCertificates(next);
        int closed = 0;
        foreach (var t in _ctx.Tracker.Live)
        {
            if (t.PolicyInput is not { } input || t.DestinationUid is null)
            {
                continue;
            }
            var destination = next.FindWorkloadByUid(t.DestinationUid);
            if (destination is null)
            {
                t.Record.ResponseFlags = "DENY";
                t.Close("destination workload removed from the config");
                closed++;
                continue;
            }
            var decision = Authorizer.Evaluate(next, destination, input);
            if (!decision.Allowed)
            {
                t.Record.ResponseFlags = "DENY";
                t.Close($"closed after policy change: {decision.Describe()}");
                closed++;
            }
        }
        if (closed > 0)
        {
            AgentLog.PolicyClosedConnections(_logger, closed);
        }
    }

    /// <summary>Certificates are held only for identities of workloads served on this node (issue 8).</summary>
    private void DropUnusedCertificates(MeshSnapshot snapshot)
    {
        var inUse = new HashSet<SpiffeId>();
        var local = State.NodeName.Length == 0 ? snapshot.Workloads : snapshot.WorkloadsOnNode(State.NodeName);
        foreach (var w in local)
        {
            inUse.Add(new SpiffeId(w.EffectiveTrustDomain(Settings.TrustDomain), w.Namespace, w.ServiceAccount));
        }
        int dropped = _certificates.Retain(inUse);
        if (dropped > 0)
        {
            AgentLog.CertificatesDropped(_logger, dropped);
        }
    }

    /// <summary>HBONE connections this agent holds open to peers (tests assert that tunnels share them).</summary>
    internal int HboneConnectionCount => _pool.ConnectionCount;

    public void RequestShutdown(string reason) => _shutdownRequested.TrySetResult(reason);

    /// <summary>
    /// Graceful stop: readiness fails, listeners close, HBONE servers send GOAWAY, open connections get
    /// <see cref="MeshConfig.DrainTimeout"/> to finish, then the rest are closed.
    /// </summary>
    public async Task StopAsync(string reason)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        var timeout = Settings.DrainTimeout;
        AgentLog.Draining(_logger, reason, _ctx.Tracker.Count, timeout.TotalSeconds);
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_cniServer is not null)
        {
            await _cniServer.DisposeAsync().ConfigureAwait(false);
        }
        if (_handover is not null)
        {
            await _handover.DisposeAsync().ConfigureAwait(false);
        }
        if (_inPod is not null)
        {
            // The pods' namespaces stay open until the drain is over: accepted connections still dial from inside them.
            await _inPod.StopListenersAsync().ConfigureAwait(false);
        }
        foreach (var l in _listeners)
        {
            await l.StopAsync().ConfigureAwait(false);
        }
        int left = await _ctx.Tracker.DrainAsync(timeout).ConfigureAwait(false);
        if (left > 0)
        {
            AgentLog.DrainDeadline(_logger, left);
            _ctx.Tracker.CloseAll("agent shutting down");
            await _ctx.Tracker.DrainAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        AgentLog.Drained(_logger);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync("dispose").ConfigureAwait(false);
        if (_inPod is not null)
        {
            await _inPod.DisposeAsync().ConfigureAwait(false);
        }
        _watcher?.Dispose();
        if (_admin is not null)
        {
            await _admin.DisposeAsync().ConfigureAwait(false);
        }
        foreach (var l in _listeners)
        {
            await l.DisposeAsync().ConfigureAwait(false);
        }
        _memory.Dispose();
        _ctx.IdleHbone.Dispose();
        _ctx.Refusals.Dispose();
        await _pool.DisposeAsync().ConfigureAwait(false);
        await _certificates.DisposeAsync().ConfigureAwait(false);
        (_issuer as IDisposable)?.Dispose();
        _stopping.Dispose();
    }
}
