using System.Collections.Immutable;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>
/// The Kubernetes API source's input: lists and watches the mesh kinds on one API server and holds every object
/// as an immutable <see cref="KubeObjectSet"/>, ready for the translator.
/// </summary>
/// <remarks>
/// <para>Composition (generic host): register one instance and run it as a hosted service, e.g.
/// <c>services.AddSingleton(sp =&gt; new KubernetesApiWatcher(options, sp.GetRequiredService&lt;ILoggerFactory&gt;()));
/// services.AddHostedService(sp =&gt; sp.GetRequiredService&lt;KubernetesApiWatcher&gt;());</c>. The source that
/// feeds the store subscribes to <see cref="Changed"/> (or reads <see cref="Current"/>), translates the set and
/// publishes it; readiness awaits <see cref="InitialSync"/>; <c>/config_dump</c> shows <see cref="Status"/>.</para>
/// <para><see cref="StartAsync"/> reads the kubeconfig (a missing or broken one fails the start with a message
/// naming it) and returns at once; the lists and watches then run in the background, one loop per kind
/// (<see cref="KubeReflector"/>), until <see cref="StopAsync"/>. Nothing they meet is fatal: an unreachable
/// server, errors and expired versions are retried, and the objects held are kept until the server says
/// otherwise.</para>
/// <para>Notifications are coalesced: <see cref="Changed"/> fires once the changes stopped for
/// <see cref="KubernetesApiOptions.CoalesceDelay"/> (or after <see cref="KubernetesApiOptions.MaxCoalesceDelay"/>
/// under a steady stream), on one background task at a time, with the set current then.</para>
/// </remarks>
public sealed class KubernetesApiWatcher : IHostedService, IAsyncDisposable
{
    private readonly KubernetesApiOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Func<string, string?> _environment;
    private readonly KubeObjectStore _store;
    private readonly Channel<bool> _dirty = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TaskCompletionSource _initialSync = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private long _lastChange;
    private KubeConnection? _connection;
    private ImmutableArray<KubeReflector> _reflectors = [];
    private Task _running = Task.CompletedTask;
    private bool _started;
    private bool _stopped;

    public KubernetesApiWatcher(KubernetesApiOptions options, ILoggerFactory? loggerFactory = null)
        : this(options, loggerFactory, TimeProvider.System, Environment.GetEnvironmentVariable)
    {
    }

    internal KubernetesApiWatcher(KubernetesApiOptions options, ILoggerFactory? loggerFactory, TimeProvider time, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Ambient.Mesh.Kubernetes.Api");
        _time = time;
        _environment = environment;
        _store = new KubeObjectStore(OnChanged);
    }

    /// <summary>Every object held now. Cheap: the same immutable instance until something changes.</summary>
    public KubeObjectSet Current => _store.Current;

    /// <summary>
    /// Raised after a batch of changes with the set as it is then. Handlers run one at a time on a background task;
    /// one that throws is logged and does not stop the watcher.
    /// </summary>
    public event Action<KubeObjectSet>? Changed;

    /// <summary>
    /// Completes when every watched kind finished its first list (a kind whose CRD is not installed counts as
    /// done). Stays pending while the server cannot be reached; cancelled when the watcher stops first.
    /// </summary>
    public Task InitialSync => _initialSync.Task;

    /// <summary>Each watched kind's state, in the order of <see cref="KubernetesApiOptions.Watches"/>.</summary>
    public ImmutableArray<KubeKindStatus> Status
    {
        get
        {
            ImmutableArray<KubeReflector> reflectors = _reflectors;
            ImmutableArray<KubeKindStatus>.Builder statuses = ImmutableArray.CreateBuilder<KubeKindStatus>(reflectors.Length);
            foreach (KubeReflector reflector in reflectors)
            {
                statuses.Add(reflector.Status());
            }
            return statuses.MoveToImmutable();
        }
    }

    /// <summary>The API server's URL, once started.</summary>
    public Uri? Server => _connection?.Server;

    /// <summary>Where the connection settings came from ("kubeconfig PATH", "in-cluster service account"), once started.</summary>
    public string? Origin => _connection?.Origin;

    /// <summary>Reads the connection settings and starts listing and watching; returns without waiting for any of it.</summary>
    /// <exception cref="InvalidOperationException">No usable kubeconfig or service account; the message says which and why.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopped, this);
            if (_started)
            {
                throw new InvalidOperationException("the Kubernetes API watcher is already started");
            }
            _started = true;
        }
        KubeConnection connection = await KubeConnection.OpenAsync(_options, _environment, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            if (_stopped)
            {
                connection.Dispose();
                throw new ObjectDisposedException(nameof(KubernetesApiWatcher));
            }
            _connection = connection;
            _reflectors = [.. _options.Watches.Select(w => new KubeReflector(w, connection, _store, _options, _logger, _time))];
        }
        KubeApiLog.Started(_logger, connection.Server, connection.Origin, _reflectors.Length);
        if (connection.CredentialsWithheld)
        {
            KubeApiLog.CredentialsWithheld(_logger, connection.Origin, connection.Server);
        }

        CancellationToken stopping = _stopping.Token;
        var tasks = new List<Task>(_reflectors.Length + 2);
        foreach (KubeReflector reflector in _reflectors)
        {
            tasks.Add(Task.Run(() => reflector.RunAsync(stopping), CancellationToken.None));
        }
        tasks.Add(Task.Run(() => NotifyLoopAsync(stopping), CancellationToken.None));
        tasks.Add(AwaitInitialSyncAsync([.. _reflectors.Select(r => r.Synced)]));
        _running = Task.WhenAll(tasks);
    }

    /// <summary>Stops every list, watch and notification and waits for them (or until <paramref name="cancellationToken"/>).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }
            _stopped = true;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            // The loops never throw; a caller's cancellation only stops the waiting.
            await _running.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _initialSync.TrySetCanceled(_stopping.Token);
            if (_running.IsCompleted)
            {
                _connection?.Dispose();
                _stopping.Dispose();
            }
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);

    private async Task AwaitInitialSyncAsync(Task[] synced)
    {
        try
        {
            await Task.WhenAll(synced).ConfigureAwait(false);
            KubeApiLog.InitialSyncDone(_logger, Current.Objects.Count);
            _initialSync.TrySetResult();
        }
        catch (OperationCanceledException)
        {
            _initialSync.TrySetCanceled();
        }
    }

    private void OnChanged()
    {
        Volatile.Write(ref _lastChange, _time.GetTimestamp());
        _dirty.Writer.TryWrite(true);
    }

    private async Task NotifyLoopAsync(CancellationToken cancellationToken)
    {
        long notified = 0;
        try
        {
            while (await _dirty.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                _dirty.Reader.TryRead(out _);
                long first = _time.GetTimestamp();
                while (true)
                {
                    long now = _time.GetTimestamp();
                    TimeSpan quietLeft = _options.CoalesceDelay - _time.GetElapsedTime(Volatile.Read(ref _lastChange), now);
                    TimeSpan capLeft = _options.MaxCoalesceDelay - _time.GetElapsedTime(first, now);
                    TimeSpan wait = quietLeft < capLeft ? quietLeft : capLeft;
                    if (wait <= TimeSpan.Zero)
                    {
                        break;
                    }
                    await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
                }
                // Changes from here on signal again and get their own notification.
                _dirty.Reader.TryRead(out _);
                KubeObjectSet set = _store.Current;
                if (set.Generation == notified)
                {
                    continue;
                }
                notified = set.Generation;
                try
                {
                    Changed?.Invoke(set);
                }
                catch (Exception e)
                {
                    KubeApiLog.HandlerFailed(_logger, e);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private static void Validate(KubernetesApiOptions options)
    {
        if (options.Watches.IsDefaultOrEmpty)
        {
            throw new ArgumentException("no kinds to watch", nameof(options));
        }
        var seen = new HashSet<(string, string)>();
        foreach (KubeWatch watch in options.Watches)
        {
            if (!seen.Add((watch.Resource.Group, watch.Resource.Kind)))
            {
                throw new ArgumentException($"{watch.Resource} is watched twice; one watch per kind (objects are keyed by kind and name)", nameof(options));
            }
        }
        if (options.CoalesceDelay < TimeSpan.Zero || options.MaxCoalesceDelay < options.CoalesceDelay)
        {
            throw new ArgumentException("CoalesceDelay must be >= 0 and <= MaxCoalesceDelay", nameof(options));
        }
        if (options.InitialBackoff <= TimeSpan.Zero || options.MaxBackoff < options.InitialBackoff)
        {
            throw new ArgumentException("InitialBackoff must be > 0 and <= MaxBackoff", nameof(options));
        }
        if (options.MissingKindRetry <= TimeSpan.Zero || options.MinWatchTimeout < TimeSpan.FromSeconds(1)
            || options.ListTimeout <= TimeSpan.Zero || options.ListPageSize <= 0 || options.MaxMessageBytes <= 0)
        {
            throw new ArgumentException("MissingKindRetry, ListTimeout, ListPageSize and MaxMessageBytes must be positive, MinWatchTimeout at least 1 s", nameof(options));
        }
    }
}
