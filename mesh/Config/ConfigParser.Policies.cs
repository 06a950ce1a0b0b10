using System.Collections.Immutable;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Config;

internal sealed partial class ConfigParser
{
    // ztunnel's Authorization (src/rbac.rs).
    private static readonly string[] PolicyKeys = ["name", "namespace", "scope", "action", "dryRun", "rules"];

    // ztunnel's RbacMatch. Strict: an ignored, misspelt match field would make an ALLOW rule broader.
    private static readonly string[] MatchKeys =
    [
        "namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts", "principals", "notPrincipals",
        "sourceIps", "notSourceIps", "destinationIps", "notDestinationIps", "destinationPorts", "notDestinationPorts",
    ];

    private static readonly (string, PolicyScope)[] Scopes =
    [
        ("Global", PolicyScope.Global), ("Namespace", PolicyScope.Namespace), ("WorkloadSelector", PolicyScope.WorkloadSelector),
        ("WORKLOAD_SELECTOR", PolicyScope.WorkloadSelector),
    ];

    private static readonly (string, PolicyAction)[] Actions = [("Allow", PolicyAction.Allow), ("Deny", PolicyAction.Deny)];

    private const string StringMatchForms =
        "expected a string match: \"value\" (exact), \"prefix*\", \"*suffix\", \"*\" (presence), " +
        "{Exact: v}, {Prefix: v}, {Suffix: v}, {Presence: []}, or the tagged form !Exact v";

    private readonly List<YamlMappingNode?> _policyNodes = [];

    private ImmutableArray<AuthorizationPolicy> ParsePolicies(YamlSequenceNode seq, string path) =>
        ParseEntries(seq, path, "policy", _policyNodes, ParsePolicy);

    private AuthorizationPolicy? ParsePolicy(YamlMappingNode map, string path)
    {
        string? name = null, ns = null;
        PolicyScope? scope = null;
        PolicyAction? action = null;
        bool dryRun = false;
        ImmutableArray<PolicyRule> rules = [];
        bool scopeSeen = false, actionSeen = false;
        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            string f = Child(path, key);
            switch (key)
            {
                case "name":
                    name = r.String(value, f);
                    break;
                case "namespace":
                    ns = r.String(value, f);
                    break;
                case "scope":
                    scopeSeen = true;
                    scope = r.Enum(value, f, Scopes);
                    break;
                case "action":
                    actionSeen = true;
                    action = r.Enum(value, f, Actions);
                    break;
                case "dryRun":
                    dryRun = r.Bool(value, f) ?? false;
                    break;
                case "rules":
                    rules = ParseRules(value, f);
                    break;
                default:
                    r.UnknownKey(k, path, PolicyKeys, strict: false);
                    break;
            }
        }
        bool ok = scope is not null && action is not null;
        if (string.IsNullOrEmpty(name))
        {
            r.Error(map, Child(path, "name"), "required: the policy's name");
            ok = false;
        }
        if (string.IsNullOrEmpty(ns))
        {
            r.Error(map, Child(path, "namespace"), "required: the policy's namespace");
            ok = false;
        }
        // Istio requires both (no default in its local config); guessing either would change who gets in.
        if (!scopeSeen)
        {
            r.Error(map, Child(path, "scope"), "required: one of Global, Namespace, WorkloadSelector");
        }
        if (!actionSeen)
        {
            r.Error(map, Child(path, "action"), "required: Allow or Deny");
        }
        if (!ok)
        {
            return null;
        }
        return new AuthorizationPolicy
        {
            Name = name!,
            Namespace = ns!,
            Scope = scope!.Value,
            Action = action!.Value,
            DryRun = dryRun,
            Rules = rules,
        };
    }

    /// <summary>rules: a list of rules; a rule is a list of clauses; a clause is a list of matches.</summary>
    private ImmutableArray<PolicyRule> ParseRules(YamlNode node, string path)
    {
        YamlSequenceNode? rules = r.Sequence(node, path);
        if (rules is null)
        {
            return [];
        }
        var rb = ImmutableArray.CreateBuilder<PolicyRule>(rules.Children.Count);
        for (int i = 0; i < rules.Children.Count; i++)
        {
            string rp = Index(path, i);
            YamlSequenceNode? clauses = r.Sequence(rules.Children[i], rp);
            var cb = ImmutableArray.CreateBuilder<PolicyClause>();
            for (int j = 0; clauses is not null && j < clauses.Children.Count; j++)
            {
                string cp = Index(rp, j);
                YamlSequenceNode? matches = r.Sequence(clauses.Children[j], cp);
                var mb = ImmutableArray.CreateBuilder<PolicyMatch>();
                for (int m = 0; matches is not null && m < matches.Children.Count; m++)
                {
                    if (ParseMatch(matches.Children[m], Index(cp, m)) is { } match)
                    {
                        mb.Add(match);
                    }
                }
                cb.Add(new PolicyClause(mb.ToImmutable()));
            }
            rb.Add(new PolicyRule(cb.ToImmutable()));
        }
        return rb.ToImmutable();
    }

    private PolicyMatch? ParseMatch(YamlNode node, string path)
    {
        if (IsNull(node))
        {
            return new PolicyMatch(); // `- {}` and `- ~` are both an empty match (which matches nothing)
        }
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return null;
        }
        var match = new PolicyMatch();
        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            string f = Child(path, key);
            switch (key)
            {
                case "namespaces":
                    match = match with { Namespaces = StringMatches(value, f) };
                    break;
                case "notNamespaces":
                    match = match with { NotNamespaces = StringMatches(value, f) };
                    break;
                case "principals":
                    match = match with { Principals = StringMatches(value, f) };
                    break;
                case "notPrincipals":
                    match = match with { NotPrincipals = StringMatches(value, f) };
                    break;
                case "serviceAccounts":
                    (ImmutableArray<StringMatch> sa, ImmutableArray<ServiceAccountMatch> nsa) = ServiceAccountMatches(value, f);
                    match = match with { ServiceAccounts = sa, NamespacedServiceAccounts = nsa };
                    break;
                case "notServiceAccounts":
                    (ImmutableArray<StringMatch> nsa2, ImmutableArray<ServiceAccountMatch> nnsa) = ServiceAccountMatches(value, f);
                    match = match with { NotServiceAccounts = nsa2, NotNamespacedServiceAccounts = nnsa };
                    break;
                case "sourceIps":
                    match = match with { SourceIps = Cidrs(value, f) };
                    break;
                case "notSourceIps":
                    match = match with { NotSourceIps = Cidrs(value, f) };
                    break;
                case "destinationIps":
                    match = match with { DestinationIps = Cidrs(value, f) };
                    break;
                case "notDestinationIps":
                    match = match with { NotDestinationIps = Cidrs(value, f) };
                    break;
                case "destinationPorts":
                    match = match with { DestinationPorts = Ports(value, f) };
                    break;
                case "notDestinationPorts":
                    match = match with { NotDestinationPorts = Ports(value, f) };
                    break;
                default:
                    r.UnknownKey(k, path, MatchKeys, strict: true);
                    break;
            }
        }
        return match;
    }

    private ImmutableArray<StringMatch> StringMatches(YamlNode node, string path)
    {
        YamlSequenceNode? seq = r.Sequence(node, path);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<StringMatch>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            if (StringMatchOf(seq.Children[i], Index(path, i)) is StringMatch m)
            {
                b.Add(m);
            }
        }
        return b.ToImmutable();
    }

    /// <summary>
    /// Istio's local config is read by serde_yaml 0.9, which writes enums as tags (<c>!Exact foo</c>) and
    /// also reads the one-entry-map form (<c>{Exact: foo}</c>); protobuf JSON spells them lowercase
    /// (<c>{exact: foo}</c>). All of those are accepted, plus a plain string with Istio's
    /// AuthorizationPolicy wildcards ("foo" exact, "foo*" prefix, "*foo" suffix, "*" presence), which is
    /// what people write by hand.
    /// </summary>
    private StringMatch? StringMatchOf(YamlNode node, string path)
    {
        if (!node.Tag.IsEmpty)
        {
            string tag = node.Tag.Value.TrimStart('!');
            StringMatchKind? kind = KindOf(tag);
            if (kind is null)
            {
                r.Error(node, path, $"unknown tag '!{tag}'; {StringMatchForms}");
                return null;
            }
            if (kind == StringMatchKind.Presence)
            {
                return new StringMatch(StringMatchKind.Presence, "");
            }
            return node is YamlScalarNode tagged ? new StringMatch(kind.Value, tagged.Value ?? "") : Bad(node, path);
        }
        switch (node)
        {
            case YamlScalarNode s when !IsNull(s):
                return Shorthand(s.Value ?? "");
            case YamlMappingNode { Children.Count: 1 } map:
                foreach (KeyValuePair<YamlNode, YamlNode> kv in map.Children)
                {
                    StringMatchKind? kind = kv.Key is YamlScalarNode k ? KindOf(k.Value ?? "") : null;
                    if (kind is null)
                    {
                        r.Error(kv.Key, path, $"unknown string match {Describe(kv.Key)}; {StringMatchForms}");
                        return null;
                    }
                    if (kind == StringMatchKind.Presence)
                    {
                        return new StringMatch(StringMatchKind.Presence, "");
                    }
                    string? value = r.String(kv.Value, Child(path, ((YamlScalarNode)kv.Key).Value!));
                    return value is null ? null : new StringMatch(kind.Value, value);
                }
                return null;
            default:
                return Bad(node, path);
        }
    }

    private StringMatch? Bad(YamlNode node, string path)
    {
        r.Error(node, path, $"found {Describe(node)}; {StringMatchForms}");
        return null;
    }

    private static StringMatch Shorthand(string s) => s switch
    {
        "*" => new StringMatch(StringMatchKind.Presence, ""),
        _ when s.Length > 1 && s.EndsWith('*') => new StringMatch(StringMatchKind.Prefix, s[..^1]),
        _ when s.Length > 1 && s.StartsWith('*') => new StringMatch(StringMatchKind.Suffix, s[1..]),
        _ => new StringMatch(StringMatchKind.Exact, s),
    };

    private static StringMatchKind? KindOf(string name) => name.ToLowerInvariant() switch
    {
        "exact" => StringMatchKind.Exact,
        "prefix" => StringMatchKind.Prefix,
        "suffix" => StringMatchKind.Suffix,
        "presence" => StringMatchKind.Presence,
        _ => null,
    };

    /// <summary>
    /// serviceAccounts: newer ztunnel uses <c>{namespace: ns, serviceAccount: sa}</c>; a string match is
    /// also accepted and compared with the source's service-account name.
    /// </summary>
    private (ImmutableArray<StringMatch>, ImmutableArray<ServiceAccountMatch>) ServiceAccountMatches(YamlNode node, string path)
    {
        YamlSequenceNode? seq = r.Sequence(node, path);
        if (seq is null)
        {
            return ([], []);
        }
        var strings = ImmutableArray.CreateBuilder<StringMatch>();
        var scoped = ImmutableArray.CreateBuilder<ServiceAccountMatch>();
        for (int i = 0; i < seq.Children.Count; i++)
        {
            YamlNode item = seq.Children[i];
            string p = Index(path, i);
            if (item.Tag.IsEmpty && item is YamlMappingNode map && !(map.Children.Count == 1 && IsStringMatchMap(map)))
            {
                string? ns = null, sa = null;
                foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, p))
                {
                    switch (key)
                    {
                        case "namespace":
                            ns = r.String(value, Child(p, key));
                            break;
                        case "serviceAccount":
                            sa = r.String(value, Child(p, key));
                            break;
                        default:
                            r.UnknownKey(k, p, ["namespace", "serviceAccount"], strict: true);
                            break;
                    }
                }
                if (string.IsNullOrEmpty(ns) || string.IsNullOrEmpty(sa))
                {
                    r.Error(map, p, "a service-account match needs both namespace and serviceAccount");
                    continue;
                }
                scoped.Add(new ServiceAccountMatch(ns, sa));
            }
            else if (StringMatchOf(item, p) is StringMatch m)
            {
                strings.Add(m);
            }
        }
        return (strings.ToImmutable(), scoped.ToImmutable());
    }

    private static bool IsStringMatchMap(YamlMappingNode map)
    {
        foreach (KeyValuePair<YamlNode, YamlNode> kv in map.Children)
        {
            return kv.Key is YamlScalarNode k && KindOf(k.Value ?? "") is not null;
        }
        return false;
    }

    private ImmutableArray<IpNet> Cidrs(YamlNode node, string path)
    {
        YamlSequenceNode? seq = r.Sequence(node, path);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<IpNet>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string? text = r.String(seq.Children[i], Index(path, i));
            if (text is null)
            {
                continue;
            }
            if (ConfigValues.TryParseCidr(text, out IpNet net, out string error))
            {
                b.Add(net);
            }
            else
            {
                r.Error(seq.Children[i], Index(path, i), error);
            }
        }
        return b.ToImmutable();
    }

    private ImmutableArray<int> Ports(YamlNode node, string path)
    {
        YamlSequenceNode? seq = r.Sequence(node, path);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<int>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            if (r.Port(seq.Children[i], Index(path, i), allowZero: false) is int p)
            {
                b.Add(p);
            }
        }
        return b.ToImmutable();
    }
}
