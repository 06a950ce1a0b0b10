using Ambient.Mesh.Sources;
using Ambient.Waypoint.Hbone;
using Ambient.Waypoint.Hosting;
using Ambient.Waypoint.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace Ambient.Waypoint.Admin;

/// <summary>
/// The plain-TCP ports, as ztunnel has them: admin (<c>/config_dump</c>, <c>POST /quitquitquit</c>; localhost by
/// default), metrics (<c>/metrics</c>) and readiness (<c>/healthz/ready</c>: 200 once every mesh source has synced
/// and until the drain begins, 503 otherwise).
/// </summary>
internal sealed class AdminEndpoints(MeshStore store, WaypointIdentity identity, WaypointMetrics metrics, WaypointEndpoints endpoints, IHostApplicationLifetime lifetime)
{
    public async Task HandleAsync(HttpContext context)
    {
        int port = context.Connection.LocalPort;
        string path = context.Request.Path.Value ?? "/";
        var response = context.Response;
        if (port == endpoints.Readiness.Port && path == "/healthz/ready")
        {
            bool ready = store.IsSynced && !lifetime.ApplicationStopping.IsCancellationRequested;
            response.StatusCode = ready ? 200 : 503;
            await response.WriteAsync(ready ? "ready\n" : "not ready\n").ConfigureAwait(false);
        }
        else if (port == endpoints.Metrics.Port && path == "/metrics")
        {
            response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await response.WriteAsync(metrics.Render()).ConfigureAwait(false);
        }
        else if (port == endpoints.Admin.Port && path == "/config_dump")
        {
            response.ContentType = "application/json";
            await response.WriteAsync(ConfigDump.Render(store.Current, identity, store.Sources)).ConfigureAwait(false);
        }
        else if (port == endpoints.Admin.Port && path == "/quitquitquit" && HttpMethods.IsPost(context.Request.Method))
        {
            await response.WriteAsync("draining\n").ConfigureAwait(false);
            lifetime.StopApplication();
        }
        else
        {
            response.StatusCode = 404;
        }
    }
}
