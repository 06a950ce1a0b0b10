using Ambient.Mesh.Model.L7;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

/// <summary>Patterns as Envoy's RE2 reads them: full match, RE2 spellings, RE2's refusals.</summary>
public sealed class SafeRegexTests
{
    private static SafeRegex Compile(string pattern, bool fullMatch = true)
    {
        Assert.True(SafeRegex.TryCreate(pattern, ignoreCase: false, fullMatch, out SafeRegex? regex, out string error), error);
        return regex!;
    }

    [Theory]
    [InlineData("/api/v[0-9]+", "/api/v12", true)]
    [InlineData("/api/v[0-9]+", "/api/v12/users", false)] // full match, not search
    [InlineData("a|b", "b", true)]
    [InlineData("a|b", "ab", false)] // the alternation is anchored as a whole
    [InlineData("(?P<version>v[0-9])/.*", "v1/x", true)] // RE2 named group
    [InlineData("\\pL+", "Grüße", true)] // one-letter Unicode class
    [InlineData("\\Qa.b\\E", "a.b", true)] // quoted literal
    [InlineData("\\Qa.b\\E", "axb", false)]
    [InlineData("[[:digit:]]+-[[:alpha:]]", "42-x", true)]
    [InlineData("[[:digit:]]+", "4a", false)]
    [InlineData("[a[]+", "a[a", true)] // a '[' inside a class is a literal
    public void MatchesAsRe2Would(string pattern, string input, bool expected) =>
        Assert.Equal(expected, Compile(pattern).IsMatch(input));

    [Fact]
    public void SearchPatternsMatchInsideTheInput()
    {
        SafeRegex search = Compile("v[0-9]+", fullMatch: false);
        Assert.True(search.IsMatch("/api/v2/users"));
        Assert.False(search.FullMatch);
    }

    [Theory]
    [InlineData("(?=a)b", "linear time")] // lookahead
    [InlineData("(a)\\1", "linear time")] // backreference
    [InlineData("(?>a)", "linear time")] // atomic group
    [InlineData("a(", "not a valid regular expression")]
    [InlineData("a{2,1}", "not a valid regular expression")]
    [InlineData("", "must not be empty")]
    public void RefusesWhatRe2Refuses(string pattern, string message)
    {
        Assert.False(SafeRegex.TryCreate(pattern, false, out SafeRegex? regex, out string error));
        Assert.Null(regex);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public void RefusesOverlongPatterns()
    {
        Assert.False(SafeRegex.TryCreate(new string('a', SafeRegex.MaxLength + 1), false, out _, out string error));
        Assert.Contains("too long", error, StringComparison.Ordinal);
    }

    [Fact]
    public void EqualityIsByPattern()
    {
        Assert.Equal(Compile("a+"), Compile("a+"));
        Assert.NotEqual(Compile("a+"), Compile("a+", fullMatch: false));
    }
}
