using System.Diagnostics;
using System.Net;

namespace Ambient.Waypoint.Tests.Support;

/// <summary>curl as a client pod: binds the pod's address and goes through its node's ztunnel SOCKS5 port.</summary>
internal static class Curl
{
    public sealed record Result(int ExitCode, int Status, string Headers, string Body, string Stderr)
    {
        /// <summary>A response header's value (last occurrence), or null.</summary>
        public string? Header(string name)
        {
            string? found = null;
            foreach (var line in Headers.Split('\n'))
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0 && line[..colon].Trim().Equals(name, StringComparison.OrdinalIgnoreCase))
                {
                    found = line[(colon + 1)..].Trim();
                }
            }
            return found;
        }

        /// <summary>A "key: value" line of the backend's echo, or null.</summary>
        public string? Echo(string key)
        {
            foreach (var line in Body.Split('\n'))
            {
                if (line.StartsWith(key + ": ", StringComparison.Ordinal))
                {
                    return line[(key.Length + 2)..];
                }
            }
            return null;
        }
    }

    public static async Task<Result> RunAsync(IPAddress source, IPEndPoint socks, string url, params string[] extra)
    {
        var headersFile = Path.GetTempFileName();
        try
        {
            var psi = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-sS", "--max-time", "15", "--interface", source.ToString(), "--socks5", socks.ToString(), "-D", headersFile, "-o", "-", "-w", "\n%{http_code}" })
            {
                psi.ArgumentList.Add(a);
            }
            foreach (var a in extra)
            {
                psi.ArgumentList.Add(a);
            }
            psi.ArgumentList.Add(url);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            try
            {
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                p.Kill(entireProcessTree: true);
                throw;
            }
            string output = await stdout;
            int nl = output.LastIndexOf('\n');
            int status = int.TryParse(output[(nl + 1)..], out int s) ? s : 0;
            return new Result(p.ExitCode, status, await File.ReadAllTextAsync(headersFile), output[..Math.Max(0, nl)], await stderr);
        }
        finally
        {
            File.Delete(headersFile);
        }
    }
}
