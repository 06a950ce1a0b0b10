namespace Ambient.Ztunnel.Tests.InPod.Support;

/// <summary>Finds an agent's access log line (stdout, written when a connection ends) by its key="value" pairs.</summary>
internal static class AccessLog
{
    public static Func<string, bool> Matches(params (string Key, string Value)[] pairs) =>
        line => line.Contains("connection complete", StringComparison.Ordinal)
            && pairs.All(p => line.Contains($" {p.Key}=\"{p.Value}\"", StringComparison.Ordinal) || line.Contains($" {p.Key}={p.Value}", StringComparison.Ordinal));

    /// <summary>Waits (bounded) for the line from the connection just made: only lines after <paramref name="skip"/> count.</summary>
    public static Task<string> WaitAsync(Daemon agent, int skip, params (string Key, string Value)[] pairs) =>
        agent.WaitForLineAsync(Matches(pairs), TimeSpan.FromSeconds(20), skip: skip);
}
