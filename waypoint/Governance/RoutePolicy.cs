using Ambient.Mesh.Governance;
using Ambient.Mesh.Model.L7;

namespace Ambient.Waypoint.Governance;

/// <summary>
/// The per-route knobs the waypoint enforces around forwarding: the route timeout (all attempts together), the retry
/// policy with its per-try timeout, and VirtualService fault injection. Built by the router from the rule that matched.
/// </summary>
/// <param name="Timeout">HTTPRoute <c>timeouts.request</c> / VirtualService <c>timeout</c>; null = none (Istio's default).</param>
internal sealed record RoutePolicy(TimeSpan? Timeout, RetryPolicy Retry, HttpFaultInjection? Fault)
{
    /// <summary>Istio's mesh default for a route that says nothing: no timeout, 2 retries on connection errors.</summary>
    public static readonly RoutePolicy Default = new(null, RetryPolicy.From(HttpRetry.MeshDefault), null);

    /// <summary>Gateway API HTTPRoute rule: <c>timeouts.request</c>, <c>timeouts.backendRequest</c> (per try), <c>retry</c>.</summary>
    public static RoutePolicy From(HttpRouteRule rule)
    {
        if (rule.Timeouts is null && rule.Retry is null)
        {
            return Default;
        }
        RetryPolicy retry = rule.Retry is { } r ? RetryPolicy.From(r) : Default.Retry;
        TimeSpan? perTry = Positive(rule.Timeouts?.BackendRequest);
        return new RoutePolicy(Positive(rule.Timeouts?.Request), perTry is null ? retry : retry with { PerTryTimeout = perTry }, null);
    }

    /// <summary>Istio VirtualService http route: <c>timeout</c>, <c>retries</c> (with <c>perTryTimeout</c>), <c>fault</c>.</summary>
    public static RoutePolicy From(VirtualServiceHttpRoute route)
    {
        if (route.Timeout is null && route.Retries is null && route.Fault is null)
        {
            return Default;
        }
        RetryPolicy retry = route.Retries is { } r ? RetryPolicy.From(r) : Default.Retry;
        if (retry.PerTryTimeout is { } t && t <= TimeSpan.Zero)
        {
            retry = retry with { PerTryTimeout = null };
        }
        return new RoutePolicy(Positive(route.Timeout), retry, route.Fault);
    }

    // Zero means "disabled" for every timeout knob here (Gateway API and Istio alike).
    private static TimeSpan? Positive(TimeSpan? t) => t is { } v && v > TimeSpan.Zero ? v : null;
}
