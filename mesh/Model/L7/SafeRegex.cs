using System.Collections.Concurrent;
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

    // Building a non-backtracking regex costs milliseconds (it analyses every character class over all of
    // Unicode), and sources re-parse unchanged objects on every file reload or re-list. Compiled expressions are
    // immutable and thread-safe, so one per distinct pattern is shared. Bounded: past the limit it starts over.
    private const int CacheLimit = 4096;
    private static readonly ConcurrentDictionary<(string Pattern, RegexOptions Options), Regex> Cache = new();

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
        string dotnet = FromRe2(pattern);
        RegexOptions options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant
            | (ignoreCase ? RegexOptions.IgnoreCase : RegexOptions.None);
        try
        {
            string compiled = fullMatch ? $"\\A(?:{dotnet})\\z" : dotnet;
            if (!Cache.TryGetValue((compiled, options), out Regex? r))
            {
                r = new Regex(compiled, options);
                if (Cache.Count >= CacheLimit)
                {
                    Cache.Clear();
                }
                Cache[(compiled, options)] = r;
            }
            regex = new SafeRegex(pattern, ignoreCase, fullMatch, r);
            error = "";
            return true;
        }
        catch (ArgumentException e)
        {
            // The offset counts in the compiled form; it is the user's only if the translation changed nothing.
            string where = e is RegexParseException p && dotnet == pattern ? $" at offset {Math.Max(0, p.Offset - (fullMatch ? AnchorLength : 0))}" : "";
            error = $"'{pattern}' is not a valid regular expression: {(e is RegexParseException rp ? rp.Error.ToString() : e.Message)}{where}";
        }
        catch (NotSupportedException e)
        {
            // Lookaround, backreferences, atomic groups and conditionals (which RE2 refuses too), or an automaton
            // too large for linear-time matching.
            error = $"'{pattern}' cannot be matched in linear time as RE2 requires: {e.Message}";
        }
        return false;
    }

    /// <summary>
    /// Rewrites the RE2 spellings .NET does not know into .NET's: named groups <c>(?P&lt;n&gt;</c>, one-letter Unicode
    /// classes <c>\pL</c>, literal text <c>\Q...\E</c>, and ASCII classes such as <c>[[:alpha:]]</c> inside brackets.
    /// </summary>
    private static string FromRe2(string pattern)
    {
        if (pattern.IndexOf('\\') < 0 && !pattern.Contains("(?P<", StringComparison.Ordinal) && !pattern.Contains("[:", StringComparison.Ordinal))
        {
            return pattern;
        }
        var b = new System.Text.StringBuilder(pattern.Length + 16);
        int classStart = -1; // index in b just after the '[' (or "[^") that opened the current bracket expression
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                char next = pattern[i + 1];
                if (next == 'Q')
                {
                    int end = pattern.IndexOf("\\E", i + 2, StringComparison.Ordinal);
                    string literal = end < 0 ? pattern[(i + 2)..] : pattern[(i + 2)..end];
                    b.Append(Regex.Escape(literal));
                    i = end < 0 ? pattern.Length : end + 1;
                    continue;
                }
                if (next is 'p' or 'P' && i + 2 < pattern.Length && pattern[i + 2] != '{')
                {
                    b.Append('\\').Append(next).Append('{').Append(pattern[i + 2]).Append('}');
                    i += 2;
                    continue;
                }
                b.Append(c).Append(next);
                i++;
                continue;
            }
            if (classStart < 0)
            {
                if (c == '[')
                {
                    b.Append(c);
                    if (i + 1 < pattern.Length && pattern[i + 1] == '^')
                    {
                        b.Append('^');
                        i++;
                    }
                    classStart = b.Length;
                    continue;
                }
                if (c == '(' && string.CompareOrdinal(pattern, i, "(?P<", 0, 4) == 0)
                {
                    b.Append("(?<");
                    i += 3;
                    continue;
                }
            }
            else if (c == '[' && i + 1 < pattern.Length && pattern[i + 1] == ':'
                && pattern.IndexOf(":]", i + 2, StringComparison.Ordinal) is int close and > 0
                && PosixClass(pattern[(i + 2)..close]) is { } ranges)
            {
                b.Append(ranges);
                i = close + 1;
                continue;
            }
            else if (c == '[')
            {
                // A literal '[' in RE2; .NET would read "-[" as class subtraction.
                b.Append("\\[");
                continue;
            }
            else if (c == ']' && b.Length > classStart)
            {
                classStart = -1; // a ']' right after the opening bracket is a literal
            }
            b.Append(c);
        }
        return b.ToString();
    }

    private static string? PosixClass(string name) => name switch
    {
        "alnum" => "0-9A-Za-z",
        "alpha" => "A-Za-z",
        "ascii" => "\\x00-\\x7F",
        "blank" => "\\t ",
        "cntrl" => "\\x00-\\x1F\\x7F",
        "digit" => "0-9",
        "graph" => "!-~",
        "lower" => "a-z",
        "print" => " -~",
        "punct" => "!-/:-@\\[-`{-~",
        "space" => "\\t\\n\\v\\f\\r ",
        "upper" => "A-Z",
        "word" => "0-9A-Za-z_",
        "xdigit" => "0-9A-Fa-f",
        _ => null,
    };

    private const int AnchorLength = 5; // "\A(?:"

    public bool Equals(SafeRegex? other) =>
        other is not null && other.Pattern == Pattern && other.IgnoreCase == IgnoreCase && other.FullMatch == FullMatch;

    public override bool Equals(object? obj) => obj is SafeRegex other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Pattern, IgnoreCase, FullMatch);

    public override string ToString() => Pattern;
}
