using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Proxy;
using Ambient.Ztunnel.Sockets;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// In-pod mode: for each enrolled pod the CNI plugin announces, install the capture rules inside the pod's network
/// namespace and open the agent's listeners there (15001 outbound, 15006 inbound, 15008 HBONE), so the pod's
/// traffic is in the mesh from its first packet. Pods are persisted and re-adopted when the agent restarts.
/// Requests are served one at a time: ADD/DEL for one attachment must never interleave, and they are rare.
/// Enrollment follows the mesh live (issue 8): the network namespace of a pod the CNI plugin reported but that was not
/// enrolled is remembered, and every store change re-checks both sets, so a pod is captured when its namespace gets
/// <c>istio.io/dataplane-mode: ambient</c> and released when the label goes (or the pod says <c>none</c>), without
/// restarting it.
/// </summary>
internal sealed class InPodManager : IAsyncDisposable
{
    private readonly ProxyContext _ctx;
    private readonly Outbound _outbound;
    private readonly Inbound _inbound;
    private readonly ILogger _logger;
    private readonly PodRegistry _registry;
    // Never disposed: a CNI request may still be queued on it at dispose, and without AvailableWaitHandle it holds nothing to free.
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2213", Justification = "requests may still wait on it at dispose")]
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, PodCapture> _pods = new(StringComparer.Ordinal);
    /// <summary>Pods the CNI plugin reported that are not enrolled (yet), by attachment: captured when they become so.</summary>
    private readonly Dictionary<string, CapturedPod> _waiting = new(StringComparer.Ordinal);
    private byte[]? _lastEnrollment;
    private int _reconcileQueued;
    private bool _closed;

    public InPodManager(ProxyContext ctx, Outbound outbound, Inbound inbound, string stateDir, ILogger logger)
    {
        _ctx = ctx;
        _cniPods = new CniPodSource(ctx.State.Store, ctx.State.NodeName);
        _outbound = outbound;
        _inbound = inbound;
        _logger = logger;
        _registry = new PodRegistry(Path.Combine(stateDir, "pods.json"));
    }

    private readonly CniPodSource _cniPods;

    private InPodConfig Settings => _ctx.Settings.InPod;

    /// <summary>
    /// Read without the gate: readiness and metrics read it on I/O threads while a capture (which runs iptables) may
    /// hold the gate. A dictionary's count is two int fields, so a read racing a change is at worst one off.
    /// </summary>
    public int CapturedCount => _pods.Count;

    /// <summary>
    /// Publishes the enrollment file and takes the pods over: from the agent still running on the node with their
    /// listening sockets (an upgrade, <see cref="HandoverServer"/>), or else from the registry a previous run left.
    /// </summary>
    public async Task StartAsync(string handoverPath, CancellationToken ct)
    {
        WriteEnrollmentFile();
        _ctx.State.Changed += (_, _) => WriteEnrollmentFile();
        // Every source update, not only snapshot changes: a captured pod's workload is shadowed by the CNI source's
        // entry, so a label that releases it changes no snapshot by itself.
        _ctx.State.Store.SourceUpdated += _ => QueueReconcile();
        List<HandedOverPod>? handed = null;
        _takeover = HandoverClient.TryConnect(handoverPath, _logger);
        if (_takeover is not null)
        {
            try
            {
                handed = await _takeover.TakeOverAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or TimeoutException or SocketException)
            {
                InPodLog.TakeoverFailed(_logger, _takeover.PeerPid, ex.Message);
                _takeover.Dispose();
                _takeover = null;
            }
        }
        List<HandedOverPod> saved = handed ?? [.. _registry.Load().Select(p => new HandedOverPod(p, null))];
        if (saved.Count == 0)
        {
            return;
        }
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            foreach (var (pod, inherited) in saved)
            {
                if (!File.Exists(pod.Netns))
                {
                    InPodLog.NetnsGone(_logger, pod.Namespace, pod.Name, pod.Netns);
                    DisposeAll(inherited);
                    continue;
                }
                try
                {
                    _pods[Key(pod.ContainerId, pod.IfName)] = await CaptureAsync(pod, ct, inherited).ConfigureAwait(false);
                    if (inherited is null)
                    {
                        InPodLog.Readopted(_logger, pod.Namespace, pod.Name, pod.Netns);
                    }
                    else
                    {
                        InPodLog.TookOver(_logger, pod.Namespace, pod.Name, pod.Netns, _takeover!.PeerPid);
                    }
                }
                catch (Exception ex) when (ex is IOException or SocketException or InvalidOperationException)
                {
                    InPodLog.ReadoptFailed(_logger, pod.Namespace, pod.Name, ex.Message);
                }
            }
            SaveRegistry();
        }
        finally
        {
            _gate.Release();
        }
    }

    private HandoverClient? _takeover;
    private bool _handedOver;

    /// <summary>The agent this one took the pods over from (its pid), or null.</summary>
    public int? TookOverFrom => _takeover?.PeerPid;

    /// <summary>Once this agent serves (every listener bound, ready): tells the agent it took over from to let go and drain.</summary>
    public async Task CompleteTakeoverAsync()
    {
        if (_takeover is { } t)
        {
            await t.CompleteAsync().ConfigureAwait(false);
            t.Dispose();
        }
    }

    /// <summary>
    /// The older agent's half of a hand-over: takes the gate (no ADD or DEL until <see cref="EndHandoverAsync"/>) and
    /// returns every pod with its listeners, or null when this agent has handed over already.
    /// </summary>
    public async Task<List<(CapturedPod Pod, List<Listener> Listeners)>?> BeginHandoverAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        if (_handedOver)
        {
            _gate.Release();
            return null;
        }
        return [.. _pods.Values.Select(p => (p.Pod, p.Listeners))];
    }

    /// <summary>
    /// Committed: the newer agent serves the pods; this one stops accepting on their sockets (leaving their backlogs to
    /// it) and answers CNI requests with an error from now on. Not committed: nothing changed, this agent carries on.
    /// </summary>
    public async Task EndHandoverAsync(bool committed)
    {
        try
        {
            if (committed)
            {
                _handedOver = true;
                foreach (var p in _pods.Values)
                {
                    foreach (var l in p.Listeners)
                    {
                        await l.ReleaseToSuccessorAsync().ConfigureAwait(false);
                    }
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private static void DisposeAll(IReadOnlyDictionary<int, Socket>? sockets)
    {
        foreach (var s in sockets?.Values ?? [])
        {
            s.Dispose();
        }
    }

    public async Task<CniResponse> HandleAsync(CniRequest request, CancellationToken ct)
    {
        if (request.Version != 1)
        {
            return CniResponse.Error($"unsupported protocol version {request.Version}");
        }
        if (request.Pod is { Netns: { Length: > 0 } netns } pod)
        {
            request = request with { Pod = pod with { Netns = Netns.Locate(netns) } };
        }
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_handedOver && request.Command != "STATUS")
            {
                return CniResponse.Error("this agent has handed its pods to a newer agent and is draining; retry (the newer agent serves the CNI socket)");
            }
            return request.Command switch
            {
                "ADD" => await AddAsync(request.Pod, ct).ConfigureAwait(false),
                "DEL" => await DelAsync(request.Pod, ct).ConfigureAwait(false),
                "CHECK" => await CheckAsync(request.Pod, ct).ConfigureAwait(false),
                "STATUS" => CniResponse.Ready,
                "GC" => await GcAsync(request.ValidAttachments ?? [], ct).ConfigureAwait(false),
                _ => CniResponse.Error($"unknown command '{request.Command}'"),
            };
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<CniResponse> AddAsync(CniPod? pod, CancellationToken ct)
    {
        if (Validate(pod, needNetns: true) is { } invalid)
        {
            return invalid;
        }
        var key = Key(pod!.ContainerId!, pod.IfName!);
        var captured = new CapturedPod
        {
            Uid = string.IsNullOrEmpty(pod.Uid) ? $"{pod.Namespace}/{pod.Name}" : pod.Uid,
            Name = pod.Name!,
            Namespace = pod.Namespace!,
            ContainerId = pod.ContainerId!,
            IfName = pod.IfName!,
            Netns = pod.Netns!,
            Ips = pod.Ips ?? [],
        };
        if (!IsEnrolled(pod.Namespace!, pod.Name!))
        {
            _waiting[key] = captured;
            InPodLog.NotEnrolled(_logger, pod.Namespace!, pod.Name!);
            return CniResponse.NotEnrolled;
        }
        _waiting.Remove(key);
        if (_pods.TryGetValue(key, out var existing))
        {
            if (existing.Pod.Netns == pod.Netns && await CaptureRules.PresentAsync(existing.Pod.Netns, Settings.Firewall, ct).ConfigureAwait(false))
            {
                return CniResponse.Captured;
            }
            await ReleaseAsync(existing, ct).ConfigureAwait(false);
            _pods.Remove(key);
        }
        try
        {
            _pods[key] = await CaptureAsync(captured, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or InvalidOperationException or UnauthorizedAccessException)
        {
            InPodLog.CaptureFailed(_logger, pod.Namespace!, pod.Name!, ex.Message);
            return CniResponse.Error($"capturing pod {pod.Namespace}/{pod.Name} in {pod.Netns} failed: {ex.Message}");
        }
        SaveRegistry();
        InPodLog.Captured(_logger, captured.Namespace, captured.Name, string.Join(",", captured.Ips), captured.Netns);
        return CniResponse.Captured;
    }

    private async Task<CniResponse> DelAsync(CniPod? pod, CancellationToken ct)
    {
        if (pod?.ContainerId is null || pod.IfName is null)
        {
            return CniResponse.Removed;
        }
        _waiting.Remove(Key(pod.ContainerId, pod.IfName));
        if (_pods.Remove(Key(pod.ContainerId, pod.IfName), out var capture))
        {
            await ReleaseAsync(capture, ct).ConfigureAwait(false);
            SaveRegistry();
            InPodLog.Released(_logger, capture.Pod.Namespace, capture.Pod.Name);
        }
        return CniResponse.Removed;
    }

    private async Task<CniResponse> CheckAsync(CniPod? pod, CancellationToken ct)
    {
        if (Validate(pod, needNetns: true) is { } invalid)
        {
            return invalid;
        }
        if (!IsEnrolled(pod!.Namespace!, pod.Name!))
        {
            return CniResponse.NotEnrolled;
        }
        if (!_pods.TryGetValue(Key(pod.ContainerId!, pod.IfName!), out var capture))
        {
            return CniResponse.Error($"pod {pod.Namespace}/{pod.Name} is enrolled but not captured by this agent");
        }
        if (!await CaptureRules.PresentAsync(capture.Pod.Netns, Settings.Firewall, ct).ConfigureAwait(false))
        {
            return CniResponse.Error($"pod {pod.Namespace}/{pod.Name}: capture rules are missing from {capture.Pod.Netns}");
        }
        return CniResponse.Captured;
    }

    private async Task<CniResponse> GcAsync(List<CniAttachment> valid, CancellationToken ct)
    {
        var keep = valid.Where(a => a.ContainerId is not null && a.IfName is not null).Select(a => Key(a.ContainerId!, a.IfName!)).ToHashSet(StringComparer.Ordinal);
        foreach (var key in _pods.Keys.Where(k => !keep.Contains(k)).ToList())
        {
            if (_pods.Remove(key, out var capture))
            {
                await ReleaseAsync(capture, ct).ConfigureAwait(false);
                InPodLog.GcReleased(_logger, capture.Pod.Namespace, capture.Pod.Name);
            }
        }
        foreach (var key in _waiting.Keys.Where(k => !keep.Contains(k)).ToList())
        {
            _waiting.Remove(key);
        }
        SaveRegistry();
        return CniResponse.Removed;
    }

    private static CniResponse? Validate(CniPod? pod, bool needNetns)
    {
        if (pod is null)
        {
            return CniResponse.Error("request has no pod");
        }
        if (string.IsNullOrEmpty(pod.Name) || string.IsNullOrEmpty(pod.Namespace))
        {
            return CniResponse.Error("pod name and namespace are required");
        }
        if (string.IsNullOrEmpty(pod.ContainerId) || string.IsNullOrEmpty(pod.IfName))
        {
            return CniResponse.Error("pod containerId and ifname are required");
        }
        if (needNetns && string.IsNullOrEmpty(pod.Netns))
        {
            return CniResponse.Error("pod netns is required");
        }
        return null;
    }

    /// <summary>
    /// A pod is enrolled when a source defines an HBONE workload for it (namespace/name: a config workload, or a pod the
    /// Kubernetes translation enrolled through the <c>istio.io/dataplane-mode</c> labels), when its namespace is listed
    /// under <c>inpod.namespaces</c>, or when <c>inpod.all</c> is set (kube-system excepted).
    /// </summary>
    public bool IsEnrolled(string ns, string name)
    {
        var s = Settings;
        if (s.All && ns != "kube-system")
        {
            return true;
        }
        if (s.Namespaces.Contains(ns))
        {
            return true;
        }
        // The CNI source publishes every captured pod as HBONE; whether the pod is still enrolled is the other sources' call.
        return _cniPods.WorkloadFromOthers(ns, name) is { Protocol: InboundProtocol.Hbone };
    }

    private void QueueReconcile()
    {
        if (Interlocked.Exchange(ref _reconcileQueued, 1) == 1)
        {
            return;
        }
        _ = Task.Run(ReconcileAsync);
    }

    /// <summary>
    /// Captures the remembered pods that became enrolled and releases the captured ones that no longer are. Runs only
    /// once every source finished its initial sync: a half-synced store (an API source still listing) would otherwise
    /// release pods that are enrolled, sending their traffic around the mesh.
    /// </summary>
    internal async Task ReconcileAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            Volatile.Write(ref _reconcileQueued, 0);
            if (_closed || !_ctx.State.Store.IsSynced)
            {
                return;
            }
            bool changed = false;
            foreach (var (key, pod) in _waiting.ToList())
            {
                if (!IsEnrolled(pod.Namespace, pod.Name))
                {
                    continue;
                }
                if (!File.Exists(pod.Netns))
                {
                    _waiting.Remove(key);
                    InPodLog.NetnsGone(_logger, pod.Namespace, pod.Name, pod.Netns);
                    continue;
                }
                try
                {
                    _pods[key] = await CaptureAsync(pod, CancellationToken.None).ConfigureAwait(false);
                    _waiting.Remove(key);
                    changed = true;
                    InPodLog.Captured(_logger, pod.Namespace, pod.Name, string.Join(",", pod.Ips), pod.Netns);
                }
                catch (Exception ex) when (ex is IOException or SocketException or InvalidOperationException or UnauthorizedAccessException)
                {
                    // Stays waiting: the next change tries again.
                    InPodLog.CaptureFailed(_logger, pod.Namespace, pod.Name, ex.Message);
                }
            }
            foreach (var (key, capture) in _pods.ToList())
            {
                if (IsEnrolled(capture.Pod.Namespace, capture.Pod.Name))
                {
                    continue;
                }
                _pods.Remove(key);
                await ReleaseAsync(capture, CancellationToken.None).ConfigureAwait(false);
                _waiting[key] = capture.Pod;
                changed = true;
                InPodLog.Released(_logger, capture.Pod.Namespace, capture.Pod.Name);
            }
            if (changed)
            {
                SaveRegistry();
            }
        }
        catch (Exception ex)
        {
            InPodLog.ReconcileFailed(_logger, ex);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <param name="inherited">Listening sockets handed over by the previous agent, by port; bound afresh when null.</param>
    private async Task<PodCapture> CaptureAsync(CapturedPod pod, CancellationToken ct, IReadOnlyDictionary<int, Socket>? inherited = null)
    {
        var netns = Netns.Open(pod.Netns);
        var listeners = new List<Listener>();
        Workload? workload = null;
        try
        {
            var settings = Settings;
            await CaptureRules.InstallAsync(pod.Netns, settings.Firewall, settings.InboundCapture, ct).ConfigureAwait(false);
            workload = _cniPods.Add(pod.Namespace, pod.Name, pod.Uid, pod.Ips);
            var scope = new ProxyScope(workload.Uid, f => netns.CreateSocket(f, SocketOptions.AgentMark), $"{pod.Namespace}/{pod.Name}");
            Func<AddressFamily, Socket> create = f => netns.CreateSocket(f);
            bool tproxy = settings.InboundCapture == InboundCapture.Tproxy;
            // Handed-over sockets are taken as they are: binding anew would fail while the previous agent holds the ports
            // (they are never shared by accident, issue 13), and the sockets' backlogs carry connections already made.
            Socket Take(int port, Func<Socket> bind)
            {
                if (inherited is not null && inherited.TryGetValue(port, out var s))
                {
                    return s;
                }
                return bind();
            }
            listeners.Add(new Listener($"{scope.Name} outbound", Take(15001, () => Listener.Bind(new IPEndPoint(IPAddress.Loopback, 15001), create)), s => _outbound.HandleCapturedAsync(s, scope), _logger, _ctx.Tracker));
            listeners.Add(new Listener($"{scope.Name} inbound", Take(15006, () => Listener.Bind(new IPEndPoint(IPAddress.Any, 15006), create, transparent: tproxy)), s => _inbound.HandlePlaintextAsync(s, scope), _logger, _ctx.Tracker));
            listeners.Add(new Listener($"{scope.Name} hbone", Take(15008, () => Listener.Bind(new IPEndPoint(IPAddress.Any, 15008), create)), s => _inbound.HandleHboneAsync(s, scope), _logger, _ctx.Tracker));
            foreach (var l in listeners)
            {
                l.Start();
            }
            return new PodCapture(pod, workload.Uid, netns, listeners);
        }
        catch
        {
            foreach (var l in listeners)
            {
                await l.DisposeAsync().ConfigureAwait(false);
            }
            DisposeAll(inherited);
            if (workload is not null)
            {
                _cniPods.Remove(workload.Uid);
            }
            try
            {
                if (inherited is null) // handed-over pods' rules belong to the previous agent until it lets go
                {
                    await CaptureRules.RemoveAsync(pod.Netns, Settings.Firewall, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (IOException)
            {
            }
            netns.Dispose();
            throw;
        }
    }

    private async Task ReleaseAsync(PodCapture capture, CancellationToken ct)
    {
        foreach (var l in capture.Listeners)
        {
            await l.DisposeAsync().ConfigureAwait(false);
        }
        _cniPods.Remove(capture.Uid);
        foreach (var t in _ctx.Tracker.Live)
        {
            if (t.DestinationUid == capture.Uid)
            {
                t.Close("pod removed");
            }
        }
        if (File.Exists(capture.Pod.Netns))
        {
            try
            {
                await CaptureRules.RemoveAsync(capture.Pod.Netns, Settings.Firewall, ct).ConfigureAwait(false);
            }
            catch (IOException ex)
            {
                InPodLog.RulesRemovalFailed(_logger, capture.Pod.Namespace, capture.Pod.Name, ex.Message);
            }
        }
        capture.Netns.Dispose();
    }

    private void SaveRegistry() => _registry.Save(_pods.Values.Select(p => p.Pod));

    private void WriteEnrollmentFile()
    {
        try
        {
            var s = Settings;
            var file = new EnrollmentFile(
                1,
                [.. s.Namespaces],
                [.. _ctx.State.Current.Workloads
                    .Where(w => w.Protocol == InboundProtocol.Hbone && (w.Node.Length == 0 || _ctx.State.IsLocal(w)))
                    .Select(w => $"{w.Namespace}/{w.Name}").Distinct().Order(StringComparer.Ordinal)],
                s.All);
            var bytes = JsonSerializer.SerializeToUtf8Bytes(file, InPodJson.Default.EnrollmentFile);
            if (_lastEnrollment is not null && bytes.AsSpan().SequenceEqual(_lastEnrollment))
            {
                return;
            }
            AtomicFile.Write(s.EnrollmentFile, bytes);
            _lastEnrollment = bytes;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            InPodLog.EnrollmentFileFailed(_logger, ex.Message);
        }
    }

    private static string Key(string containerId, string ifname) => $"{containerId}/{ifname}";

    /// <summary>
    /// Drain: the pods' listeners stop accepting; their namespaces stay open for the connections already accepted
    /// (upstream sockets are made inside them) until <see cref="DisposeAsync"/>.
    /// </summary>
    public Task StopListenersAsync() => ForEachPodAsync(static async p =>
    {
        foreach (var l in p.Listeners)
        {
            await l.StopAsync().ConfigureAwait(false);
        }
    }, clear: false);

    /// <summary>
    /// Stops the pods' listeners but keeps their rules: while no agent runs, captured traffic hits closed ports and
    /// is refused, never sent around the mesh; the next agent re-adopts the pods from the registry.
    /// </summary>
    public async ValueTask DisposeAsync() => await ForEachPodAsync(static async p =>
    {
        foreach (var l in p.Listeners)
        {
            await l.DisposeAsync().ConfigureAwait(false);
        }
        p.Netns.Dispose();
    }, clear: true).ConfigureAwait(false);

    private async Task ForEachPodAsync(Func<PodCapture, Task> action, bool clear)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            // Shutting down: no more captures from store changes.
            _closed = true;
            foreach (var p in _pods.Values)
            {
                await action(p).ConfigureAwait(false);
            }
            if (clear)
            {
                _pods.Clear();
                _waiting.Clear();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private sealed record PodCapture(CapturedPod Pod, string Uid, Netns Netns, List<Listener> Listeners);
}
