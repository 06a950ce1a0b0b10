using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Policy;
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
    private readonly CertificateAuthority _ca;
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
    private readonly string _stateDir;
    private readonly ILoggerFactory _loggers;
    private volatile bool _ready;
    private int _stopped;

    private Agent(AgentOptions options, MeshConfig config, ILoggerFactory loggers, LogLevelSwitch logLevel)
    {
        _options = options;
        LogLevel = logLevel;
        _logger = loggers.CreateLogger("ztunnel");
        Metrics = new MeshMetrics();
        var stateDir = config.StateDir ?? options.StateDir ?? AgentOptions.DefaultStateDir;
        _stateDir = stateDir;
        _loggers = loggers;
        _ca = CertificateAuthority.LoadOrCreate(config.CaCertFile, config.CaKeyFile, stateDir, config.TrustDomain);
        _certificates = new CertificateManager(_ca, config.CertificateLifetime, TimeProvider.System, loggers.CreateLogger("identity"));
        _certificates.RenewalFailed += (id, ex) =>
        {
            Metrics.CertificateRenewalFailed();
            _logger.LogWarning("certificate renewal for {Identity} failed, keeping the current one: {Error}", id, ex.Message);
        };
        _pool = new HbonePool(_certificates, new HbonePoolOptions(), loggers.CreateLogger("hbone"));
        State = new MeshState(config, options.NodeName);
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
            Config = config,
            Stopping = _stopping.Token,
            Refusals = new RefusalLog(Metrics, loggers.CreateLogger("proxy")),
            IdleHbone = new IdleHboneReaper(() => State.Current.Config.HboneIdleTimeout, Metrics),
            ResolveHost = options.ResolveHost ?? System.Net.Dns.GetHostAddressesAsync,
        };
        State.Changed += OnConfigChanged;
        _memory = new Memory.MemoryTrimmer(
            () => _ctx.Tracker.Count + _ctx.Tracker.Handlers + _pool.ConnectionCount, // tunnels, accepted (HBONE served), pooled
            loggers.CreateLogger("memory"));
    }

    public MeshState State { get; }

    public MeshMetrics Metrics { get; }

    public LogLevelSwitch LogLevel { get; }

    public bool Ready => _ready && !_stopping.IsCancellationRequested;

    /// <summary>Bound endpoints by listener name (outbound, inbound, hbone, socks5, admin, metrics, readiness).</summary>
    public Dictionary<string, IPEndPoint> EndPoints { get; } = [];

    /// <summary>Completes with the reason when something asked the agent to stop (signal, /quitquitquit).</summary>
    public Task<string> ShutdownRequested => _shutdownRequested.Task;

    public ConnectionTracker Connections => _ctx.Tracker;

    public static async Task<Agent> StartAsync(AgentOptions options, MeshConfig config, ILoggerFactory loggers, LogLevelSwitch logLevel)
    {
        var agent = new Agent(options, config, loggers, logLevel);
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
            // Re-adopt the pods of a previous run before serving the CNI plugin, so a pod is never half-owned.
            _inPod = new InPod.InPodManager(_ctx, outbound, inbound, _stateDir, _loggers.CreateLogger("inpod"));
            await _inPod.StartAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                _cniServer = new InPod.CniServer(config.InPod.CniSocket, _inPod, _loggers.CreateLogger("cni"));
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                throw new InvalidOperationException($"cannot listen on the CNI socket {config.InPod.CniSocket}: {ex.SocketErrorCode}", ex);
            }
        }

        _admin = new AdminServer(
            config.Listeners.Admin,
            config.Listeners.Metrics,
            config.Listeners.Readiness,
            Metrics,
            () => Ready,
            () => ConfigDump.Render(State.Current, State.NodeName, _certificates.Snapshot(), _ctx.Tracker, _pool.ConnectionCount, State.IsLocal),
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
        _logger.LogInformation(
            "ztunnel ready: node '{Node}', mode {Mode}, {Workloads} workloads, {Services} services, {Policies} policies; listeners {Listeners}",
            State.NodeName.Length == 0 ? "(all workloads local)" : State.NodeName,
            config.Mode.ToString().ToLowerInvariant(),
            config.Workloads.Length,
            config.Services.Length,
            config.Policies.Length,
            string.Join(", ", EndPoints.Select(e => $"{e.Key}={e.Value}")));
        if (_cniServer is not null)
        {
            _logger.LogInformation("in-pod mode: CNI plugin socket {Socket}, {Pods} pods re-adopted, capture by {Firewall} ({Inbound} inbound)",
                _cniServer.Path, _inPod!.CapturedCount, config.InPod.Firewall.ToString().ToLowerInvariant(), config.InPod.InboundCapture.ToString().ToLowerInvariant());
        }
    }

    private void Add(string name, IPEndPoint endpoint, Func<System.Net.Sockets.Socket, Task> handler)
    {
        var listener = new Listener(name, Listener.BindNamed(name, endpoint), handler, _logger, _ctx.Tracker);
        _listeners.Add(listener);
        EndPoints[name] = listener.EndPoint;
        _ctx.OwnEndpoints.Add(listener.EndPoint);
        listener.Start();
    }

    private void OnConfigFileValid(MeshConfig config)
    {
        var before = State.Current.Config;
        if (!Equals(before.Listeners, config.Listeners) || before.Mode != config.Mode || before.TrustDomain != config.TrustDomain || before.CaCertFile != config.CaCertFile)
        {
            _logger.LogWarning("config change to listeners, mode, trustDomain or ca needs a restart; applying workloads, services and policies now");
        }
        State.Update(config);
        Metrics.ConfigReload(ok: true);
        _logger.LogInformation("config reloaded from {Path}: {Workloads} workloads, {Services} services, {Policies} policies",
            config.SourcePath, config.Workloads.Length, config.Services.Length, config.Policies.Length);
    }

    private void OnConfigFileInvalid(ImmutableArray<ConfigError> errors)
    {
        Metrics.ConfigReload(ok: false);
        _logger.LogError("config change rejected, keeping the last good config ({Count} errors):\n  {Errors}", errors.Length, string.Join("\n  ", errors));
    }

    /// <summary>Istio re-checks live connections when policy changes: close the ones now denied.</summary>
    private void OnConfigChanged(MeshSnapshot previous, MeshSnapshot next)
    {
        Metrics.ForgetLabelCache();
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
            _logger.LogInformation("policy change closed {Count} connections that are now denied", closed);
        }
    }

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
        var timeout = State.Current.Config.DrainTimeout;
        _logger.LogInformation("draining ({Reason}): {Count} open connections, deadline {Seconds}s", reason, _ctx.Tracker.Count, timeout.TotalSeconds);
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_cniServer is not null)
        {
            await _cniServer.DisposeAsync().ConfigureAwait(false);
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
            _logger.LogWarning("drain deadline passed: closing {Count} connections", left);
            _ctx.Tracker.CloseAll("agent shutting down");
            await _ctx.Tracker.DrainAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        _logger.LogInformation("drained");
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
        _ca.Dispose();
        _stopping.Dispose();
    }
}
