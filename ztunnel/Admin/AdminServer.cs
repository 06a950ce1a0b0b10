using System.Net;
using Ambient.Ztunnel.Telemetry;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Admin;

/// <summary>
/// The three local HTTP ports Istio users know: admin (15000: /config_dump, /quitquitquit, /logging),
/// metrics (15020: /metrics) and readiness (15021: /healthz/ready).
/// </summary>
internal sealed class AdminServer : IAsyncDisposable
{
    private readonly HttpEndpoint _admin;
    private readonly HttpEndpoint _metrics;
    private readonly HttpEndpoint _readiness;

    public AdminServer(
        IPEndPoint admin,
        IPEndPoint metrics,
        IPEndPoint readiness,
        MeshMetrics meshMetrics,
        Func<bool> isReady,
        Func<string> configDump,
        Action<string> quit,
        LogLevelSwitch logLevel,
        ILogger logger)
    {
        // All three are bound before any serves, so a port in use fails start-up without leaving the others open.
        var bound = new List<System.Net.Sockets.Socket>(3);
        try
        {
            bound.Add(Proxy.Listener.BindNamed("admin", admin));
            bound.Add(Proxy.Listener.BindNamed("metrics", metrics));
            bound.Add(Proxy.Listener.BindNamed("readiness", readiness));
        }
        catch
        {
            foreach (var s in bound)
            {
                s.Dispose();
            }
            throw;
        }
        _admin = new HttpEndpoint("admin", bound[0], r => ValueTask.FromResult(r.Path switch
        {
            "/config_dump" => HttpResponse.Json(configDump()),
            "/quitquitquit" when r.Method == "POST" => Quit(quit),
            "/quitquitquit" => HttpResponse.Text(405, "use POST\n"),
            "/logging" => Logging(r, logLevel),
            "/" => HttpResponse.Text(200, "ztunnel admin: /config_dump /quitquitquit (POST) /logging[?level=LEVEL] /metrics\n"),
            "/metrics" or "/stats/prometheus" => Prometheus(meshMetrics),
            _ => HttpResponse.Text(404, "not found\n"),
        }), logger);
        _metrics = new HttpEndpoint("metrics", bound[1], r => ValueTask.FromResult(r.Path switch
        {
            "/metrics" or "/stats/prometheus" => Prometheus(meshMetrics),
            _ => HttpResponse.Text(404, "not found: try /metrics\n"),
        }), logger);
        _readiness = new HttpEndpoint("readiness", bound[2], r => ValueTask.FromResult(r.Path switch
        {
            "/healthz/ready" => isReady() ? HttpResponse.Text(200, "ready\n") : HttpResponse.Text(503, "not ready\n"),
            _ => HttpResponse.Text(404, "not found: try /healthz/ready\n"),
        }), logger);
    }

    public IPEndPoint AdminEndPoint => _admin.EndPoint;
    public IPEndPoint MetricsEndPoint => _metrics.EndPoint;
    public IPEndPoint ReadinessEndPoint => _readiness.EndPoint;

    private static HttpResponse Prometheus(MeshMetrics m) => new(200, "text/plain; version=0.0.4; charset=utf-8", "", m.WriteToAsync);

    private static HttpResponse Quit(Action<string> quit)
    {
        quit("/quitquitquit");
        return HttpResponse.Text(200, "OK\n");
    }

    private static HttpResponse Logging(HttpRequest r, LogLevelSwitch level)
    {
        foreach (var pair in r.Query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            if (kv.Length == 2 && kv[0] == "level")
            {
                if (!LogLevelSwitch.TryParse(kv[1], out var l))
                {
                    return HttpResponse.Text(400, $"unknown level '{kv[1]}': use trace, debug, info, warn, error or off\n");
                }
                level.Level = l;
            }
        }
        return HttpResponse.Text(200, $"current log level is {LogLevelSwitch.Name(level.Level)}\n");
    }

    public async ValueTask DisposeAsync()
    {
        await _admin.DisposeAsync().ConfigureAwait(false);
        await _metrics.DisposeAsync().ConfigureAwait(false);
        await _readiness.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>The process-wide minimum log level, changeable at run time through /logging.</summary>
internal sealed class LogLevelSwitch(LogLevel level)
{
    public LogLevel Level { get; set; } = level;

    public static bool TryParse(string s, out LogLevel level)
    {
        level = s.ToLowerInvariant() switch
        {
            "trace" => LogLevel.Trace,
            "debug" => LogLevel.Debug,
            "info" or "information" => LogLevel.Information,
            "warn" or "warning" => LogLevel.Warning,
            "error" => LogLevel.Error,
            "off" or "none" => LogLevel.None,
            _ => (LogLevel)(-1),
        };
        return level >= 0;
    }

    public static string Name(LogLevel l) => l switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "error",
        _ => "off",
    };
}
