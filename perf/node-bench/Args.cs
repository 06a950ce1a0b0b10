using System.Globalization;

namespace Ambient.NodeBench;

/// <summary>"--key value" pairs after the command; a missing required key is a clear error, not a crash.</summary>
internal sealed class Args
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static Args Parse(string[] argv)
    {
        var a = new Args();
        for (int i = 1; i < argv.Length; i++)
        {
            if (!argv[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= argv.Length)
            {
                throw new ArgumentException($"expected '--key value', got '{argv[i]}'");
            }
            a._values[argv[i][2..]] = argv[++i];
        }
        return a;
    }

    public string Str(string key, string? fallback = null) =>
        _values.TryGetValue(key, out var v) ? v : fallback ?? throw new ArgumentException($"missing --{key}");

    public int Int(string key, int? fallback = null) =>
        _values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture)
        : fallback ?? throw new ArgumentException($"missing --{key}");

    public double Double(string key, double? fallback = null) =>
        _values.TryGetValue(key, out var v) ? double.Parse(v, CultureInfo.InvariantCulture)
        : fallback ?? throw new ArgumentException($"missing --{key}");

    public System.Net.IPEndPoint Endpoint(string key) => System.Net.IPEndPoint.Parse(Str(key));
}
