using System.Collections.Concurrent;
using Ambient.Waypoint.Tests.Support;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Tests.EndToEnd;

/// <summary>
/// The access log is the waypoint's one line per request: no library logs per request at Information (YARP's
/// forwarder did, two lines each, which cost a large share of the CPU at 1,000 req/s in node-bench's L7 scenario).
/// </summary>
public sealed class WaypointLoggingTests
{
    [Fact]
    public async Task ForwardedRequestsLogNothingBelowWarning()
    {
        var lines = new ConcurrentQueue<(string Category, LogLevel Level, string Message)>();
        await using var mesh = await WaypointMesh.StartAsync(logging: b =>
        {
            b.AddProvider(new CapturingProvider(lines));
            b.SetMinimumLevel(LogLevel.Information);
        });
        // The first request issues the waypoint's certificate and opens the tunnels (logged once); the next ones
        // must add nothing below Warning.
        Assert.Equal(200, (await mesh.CurlAsync("/first")).Status);
        int before = lines.Count;
        for (int i = 0; i < 3; i++)
        {
            var r = await mesh.CurlAsync($"/quiet/{i}");
            Assert.True(r.Status == 200, $"{r.Status} {r.Body}\n{mesh.WaypointLog}");
        }
        await TestWait.UntilLoggedAsync(() => mesh.WaypointLog.ToString(), "\"GET /quiet/2 HTTP/1.1\" 200 ");
        var perRequest = lines.Skip(before).Where(l => l.Level < LogLevel.Warning).ToList();
        Assert.True(perRequest.Count == 0, string.Join("\n", perRequest.Select(l => $"{l.Category} {l.Level}: {l.Message}")));
    }

    private sealed class CapturingProvider(ConcurrentQueue<(string, LogLevel, string)> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Capturing(categoryName, lines);

        public void Dispose()
        {
        }
    }

    private sealed class Capturing(string category, ConcurrentQueue<(string, LogLevel, string)> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue((category, logLevel, formatter(state, exception)));
    }
}
