namespace Ambient.Ztunnel.Tests.InPod.Support;

/// <summary>
/// The redirection state of one network namespace: iptables-save split by table, the nftables ruleset, the policy
/// routing rules and table 100. Comparing rule lines (not counters) tells whether an operation added or removed any.
/// </summary>
internal sealed record RuleSnapshot(
    IReadOnlyDictionary<string, IReadOnlyList<string>> IptablesRules,
    string Nftables,
    IReadOnlyList<string> IpRules,
    IReadOnlyList<string> Table100)
{
    public IReadOnlyList<string> Rules(string table) => IptablesRules.TryGetValue(table, out var r) ? r : [];

    /// <summary>Every rule line in every table, in order: the fingerprint a repeated ADD must not change.</summary>
    public IEnumerable<string> AllLines =>
        IptablesRules.OrderBy(t => t.Key, StringComparer.Ordinal).SelectMany(t => t.Value.Select(r => $"{t.Key}: {r}"))
            .Concat(Nftables.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).Select(l => $"nft: {l}"))
            .Concat(IpRules.Select(r => $"rule: {r}"))
            .Concat(Table100.Select(r => $"table100: {r}"));

    public bool MentionsAmbient =>
        IptablesRules.Values.Any(t => t.Any(r => r.Contains("AMBIENT", StringComparison.Ordinal)))
        || Nftables.Contains("ambient", StringComparison.Ordinal);

    public override string ToString() => string.Join('\n', AllLines);

    public static async Task<RuleSnapshot> TakeAsync(InPodCluster cluster, string pod)
    {
        var save = await Check(cluster.InPodAsync(pod, "iptables-save"));
        var tables = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        List<string>? current = null;
        foreach (var raw in save.Stdout.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith('*'))
            {
                current = [];
                tables[line[1..]] = current;
            }
            // Chain declarations carry packet counters that change with traffic; rules and declarations' names don't.
            else if (current is not null && line.StartsWith("-A ", StringComparison.Ordinal))
            {
                current.Add(line);
            }
            else if (current is not null && line.StartsWith(':'))
            {
                current.Add(line.Split(' ')[0]);
            }
        }
        var nft = await Check(cluster.InPodAsync(pod, "nft", "list", "ruleset"));
        var rules = await Check(cluster.InPodAsync(pod, "ip", "rule", "show"));
        var table100 = await cluster.InPodAsync(pod, "ip", "route", "show", "table", "100");
        return new RuleSnapshot(
            tables,
            // iptables-nft keeps its own tables in nftables too; only a native nftables table is ours to look at here.
            ExtractNativeTables(nft.Stdout),
            Lines(rules.Stdout),
            table100.Ok ? Lines(table100.Stdout) : []);
    }

    private static string ExtractNativeTables(string ruleset)
    {
        var keep = new List<string>();
        bool inAmbient = false;
        foreach (var line in ruleset.Split('\n'))
        {
            if (line.StartsWith("table ", StringComparison.Ordinal))
            {
                inAmbient = line.StartsWith("table ip ambient", StringComparison.Ordinal);
            }
            if (inAmbient)
            {
                keep.Add(line);
            }
        }
        return string.Join('\n', keep);
    }

    private static List<string> Lines(string s) => [.. s.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim())];

    private static async Task<CommandResult> Check(Task<CommandResult> run)
    {
        var r = await run;
        return r.Ok ? r : throw new InvalidOperationException(r.ToString());
    }
}
