namespace Ambient.Waypoint.Tests.Support;

internal static class TestWait
{
    /// <summary>
    /// Waits until the text <paramref name="log"/> returns (a process's log) contains <paramref name="fragment"/>: an
    /// access log line is written after the response has gone, so a client can finish before it is there. Fails with
    /// the whole text after the timeout.
    /// </summary>
    public static async Task UntilLoggedAsync(Func<string> log, string fragment, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!log().Contains(fragment, StringComparison.Ordinal))
        {
            Assert.True(Environment.TickCount64 < deadline, $"timed out waiting for \"{fragment}\" in the log:\n{log()}");
            await Task.Delay(20);
        }
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails the test with <paramref name="what"/> after the timeout.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, $"timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// The asynchronous form: never block on a task inside the synchronous overload's condition (with inline socket
    /// completions the test may run on the socket engine's thread, which the awaited I/O then needs).
    /// </summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!await condition())
        {
            Assert.True(Environment.TickCount64 < deadline, $"timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }
}
