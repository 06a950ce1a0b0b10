using System.Net;
using Ambient.Mesh.Protos.Envoy;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Sources.Xds;

/// <summary>
/// On-demand addresses (XDS_ON_DEMAND), as Istio's ztunnel does them: the Address subscription starts empty and a
/// connection that meets an address the store lacks subscribes to it by name (<c>&lt;network&gt;/&lt;ip&gt;</c>, or
/// <c>&lt;namespace&gt;/&lt;hostname&gt;</c> for a service host), then waits a bounded time for the answer. The answer is
/// the resource itself (istiod names it by its own key and lists the asked-for name among its aliases) or the name in
/// removed_resources (the control plane has nothing under it). Concurrent connections to one address share one
/// subscription; a negative answer (or none in time) is remembered for <see cref="OnDemandNegativeTtl"/> so a burst
/// of connections to an unknown address neither waits again nor asks again. The subscription stays: if the address
/// appears later, the control plane pushes it like any other change.
/// </summary>
public sealed partial class XdsSource
{
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    // Names subscribed on demand (re-sent on reconnect), the waits in flight, and negative answers until their expiry.
    private readonly HashSet<string> _demanded = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TaskCompletionSource<bool>> _pending = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _negative = new(StringComparer.Ordinal);
    private IClientStreamWriter<DeltaDiscoveryRequest>? _writer;
    private long _demandsSent;

    /// <summary>How long a negative on-demand answer (removed, or no answer in time) spares further waits for that name.</summary>
    public TimeSpan OnDemandNegativeTtl { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Whether addresses are asked for on demand (XDS_ON_DEMAND).</summary>
    public bool OnDemand => _options.OnDemand;

    /// <summary>On-demand subscriptions sent (each name once per wait, however many connections asked).</summary>
    public long DemandsSent => Interlocked.Read(ref _demandsSent);

    /// <summary>The Address resource name Istio uses for a workload or service address: <c>&lt;network&gt;/&lt;ip&gt;</c>.</summary>
    public static string AddressName(IPAddress ip, string network) => $"{network}/{ip}";

    /// <summary>
    /// Asks the control plane for the address <paramref name="ip"/> on <paramref name="network"/> and waits (at most
    /// <see cref="ControlPlaneOptions.OnDemandTimeout"/>) until it answered; the caller then reads the store again. Returns
    /// at once when on-demand is off or the name was answered negatively a moment ago. Never throws but for cancellation.
    /// </summary>
    public Task DemandAddressAsync(IPAddress ip, string network, CancellationToken cancellationToken) =>
        _options.OnDemand ? DemandAsync(AddressName(ip, network), cancellationToken) : Task.CompletedTask;

    private async Task DemandAsync(string name, CancellationToken cancellationToken)
    {
        TaskCompletionSource<bool>? waiter;
        IClientStreamWriter<DeltaDiscoveryRequest>? writer = null;
        lock (_gate)
        {
            if (_negative.TryGetValue(name, out long until))
            {
                if (Environment.TickCount64 < until)
                {
                    return;
                }
                _negative.Remove(name);
            }
            if (!_pending.TryGetValue(name, out waiter))
            {
                waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                _pending[name] = waiter;
                _demanded.Add(name);
                // No stream now: the next one's initial request carries the name.
                writer = _writer;
            }
        }
        if (writer is not null)
        {
            Interlocked.Increment(ref _demandsSent);
            Log.DemandSent(_logger, name);
            try
            {
                await WriteAsync(writer, new DeltaDiscoveryRequest { TypeUrl = AddressType, ResourceNamesSubscribe = { name } }, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RpcException or InvalidOperationException or IOException or ObjectDisposedException
                || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                // The stream is going away; its successor re-subscribes (the name is in _demanded) and the wait goes on.
            }
        }
        try
        {
            await waiter.Task.WaitAsync(_options.OnDemandTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (_gate)
            {
                if (_pending.TryGetValue(name, out var current) && current == waiter)
                {
                    _pending.Remove(name);
                    _negative[name] = Environment.TickCount64 + (long)OnDemandNegativeTtl.TotalMilliseconds;
                    Log.DemandTimedOut(_logger, name, _options.OnDemandTimeout.TotalMilliseconds);
                }
            }
            waiter.TrySetResult(false);
        }
    }

    /// <summary>Under <see cref="_gate"/>: the waits this Address response answers (by name, alias or removal).</summary>
    private List<(TaskCompletionSource<bool> Waiter, string Name, bool Found)>? TakeAnswers(DeltaDiscoveryResponse response)
    {
        if (!_options.OnDemand)
        {
            return null;
        }
        List<(TaskCompletionSource<bool>, string, bool)>? answers = null;
        void Answer(string name, bool found)
        {
            if (found)
            {
                _negative.Remove(name);
            }
            else
            {
                // Nothing under this name: drop it from what a reconnect re-subscribes, and spare the next connections the wait.
                _demanded.Remove(name);
                _negative[name] = Environment.TickCount64 + (long)OnDemandNegativeTtl.TotalMilliseconds;
            }
            if (_pending.Remove(name, out var waiter))
            {
                (answers ??= []).Add((waiter, name, found));
            }
        }
        foreach (Resource resource in response.Resources)
        {
            Answer(resource.Name, true);
            foreach (string alias in resource.Aliases)
            {
                Answer(alias, true);
            }
        }
        foreach (string name in response.RemovedResources)
        {
            Answer(name, false);
        }
        return answers;
    }

    private void Wake(List<(TaskCompletionSource<bool> Waiter, string Name, bool Found)> answers)
    {
        foreach (var (waiter, name, found) in answers)
        {
            Log.DemandAnswered(_logger, name, found ? "found" : "not found");
            waiter.TrySetResult(found);
        }
    }
}
