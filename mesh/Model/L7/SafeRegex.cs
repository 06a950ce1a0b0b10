using System.Text.RegularExpressions;

namespace Ambient.Mesh.Model.L7;

/// <summary>
/// A regular expression from a route or policy, compiled once when the object is parsed. It always matches the
/// whole input (Envoy's <c>safe_regex</c>, which Istio and the Gateway API implementations program, is a full
/// match), and runs on .NET's non-backtracking engine: matching time is linear in the input, so a hostile
/// pattern cannot stall a request thread (RE2's guarantee, which is why Envoy uses RE2). That engine refuses
/// the constructs RE2 refuses too (backreferences, lookaround, atomic groups), so a pattern Envoy would NACK is
/// refused here at parse time.
/// </summary>
/// <remarks>Equality is by pattern and case sensitivity, so two parses of one manifest compare equal.</remarks>
public sealed class SafeRegex : IEquatable<SafeRegex>
{
    /// <summary>Istio refuses longer patterns (it approximates Envoy's RE2 program-size limit by length).</summary>
    public const int MaxLength = 1024;

    private readonly Regex _regex;

    private SafeRegex(string pattern, bool ignoreCase, bool fullMatch, Regex regex)
    {
        Pattern = pattern;
        IgnoreCase = ignoreCase;
        FullMatch = fullMatch;
        _regex = regex;
    }

    /// <summary>The pattern as the user wrote it (without the anchors this class adds).</summary>
    public string Pattern { get; }

    public bool IgnoreCase { get; }

    /// <summary>
    /// True (matches) when the pattern must match the whole input; false for search-and-replace patterns
    /// (Istio's <c>uriRegexRewrite</c>, which replaces every match within the path, as RE2's GlobalReplace).
    /// </summary>
    public bool FullMatch { get; }

    /// <summary>True when <paramref name="input"/> matches (the whole of it unless <see cref="FullMatch"/> is false).</summary>
    public bool IsMatch(ReadOnlySpan<char> input) => _regex.IsMatch(input);

    /// <summary>The compiled, anchored expression (for substitutions such as Istio's <c>uriRegexRewrite</c>).</summary>
    public Regex Regex => _regex;

    /// <summary>Compiles <paramref name="pattern"/>; false with a message naming the problem if it is not usable.</summary>
    public static bool TryCreate(string pattern, bool ignoreCase, out SafeRegex? regex, out string error) =>
        TryCreate(pattern, ignoreCase, fullMatch: true, out regex, out error);

    /// <summary>As <see cref="TryCreate(string, bool, out SafeRegex?, out string)"/>, choosing full match or search.</summary>
    public static bool TryCreate(string pattern, bool ignoreCase, bool fullMatch, out SafeRegex? regex, out string error)
    {
        regex = null;
        if (pattern.Length == 0)
        {
            error = "a regular expression must not be empty";
            return false;
        }
        if (pattern.Length > MaxLength)
        {
            error = $"regular expression is too long ({pattern.Length} characters, at most {MaxLength})";
            return false;
        }
        // RE2 (and Go) spell named groups (?P<name>...); .NET spells them (?<name>...). Same meaning.
        string dotnet = pattern.Replace("(?P<", "(?<", StringComparison.Ordinal);
        RegexOptions options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant
            | (ignoreCase ? RegexOptions.IgnoreCase : RegexOptions.None);
        try
        {
            regex = new SafeRegex(pattern, ignoreCase, fullMatch, new Regex(fullMatch ? $"\\A(?:{dotnet})\\z" : dotnet, options));
            error = "";
            return true;
        }
        catch (ArgumentException e)
        {
            error = $"'{pattern}' is not a valid regular expression: {Reason(e, fullMatch ? AnchorLength : 0)}";
        }
        catch (NotSupportedException)
        {
            error = $"'{pattern}' uses a construct RE2 does not support (backreference, lookaround, atomic group or conditional)";
        }
        return false;
    }

    // The offset counts from the start of the anchored form; report it in the user's pattern.
    private static string Reason(ArgumentException e, int shift) =>
        e is RegexParseException p ? $"{p.Error} at offset {Math.Max(0, p.Offset - shift)}" : e.Message;

    private const int AnchorLength = 5; // "\A(?:"

    public bool Equals(SafeRegex? other) =>
        other is not null && other.Pattern == Pattern && other.IgnoreCase == IgnoreCase && other.FullMatch == FullMatch;

    public override bool Equals(object? obj) => obj is SafeRegex other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Pattern, IgnoreCase, FullMatch);

    public override string ToString() => Pattern;
}
