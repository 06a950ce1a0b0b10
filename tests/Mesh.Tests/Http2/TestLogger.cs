using Microsoft.Extensions.Logging;

namespace Ambient.Mesh.Tests.Http2;

/// <summary>Collects log lines so a failing test can show what the connection saw; echoes to stderr when asked.</summary>
internal sealed class TestLogger : ILogger
{
    public static readonly TestLogger Instance = new();

    private readonly List<string> _lines = [];

    public static bool Echo { get; set; } = Environment.GetEnvironmentVariable("HTTP2_TEST_LOG") == "1";

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        string line = $"{logLevel}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}";
        lock (_lines)
        {
            if (_lines.Count < 10000)
            {
                _lines.Add(line);
            }
        }

        if (Echo)
        {
            Console.Error.WriteLine(line);
        }
    }
}
