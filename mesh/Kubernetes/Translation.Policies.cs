using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Ambient.Mesh.Model;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes;

internal sealed partial class Translation
{
    private static readonly string[] AuthzSpecKeys = ["selector", "targetRef", "targetRefs", "action", "provider", "rules"];
    private static readonly string[] RuleKeys = ["from", "to", "when"];
    private static readonly string[] SourceKeys =
    [
        "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "notNamespaces",
        "serviceAccounts", "notServiceAccounts", "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks",
    ];
    private static readonly string[] OperationKeys = ["hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"];
    private static readonly string[] ConditionKeys = ["key", "values", "notValues"];
    private static readonly string[] TargetRefKeys = ["group", "kind", "name", "namespace"];

    private static readonly (string, AuthorizationAction)[] AuthorizationActions =
        [("ALLOW", AuthorizationAction.Allow), ("DENY", AuthorizationAction.Deny), ("AUDIT", AuthorizationAction.Audit), ("CUSTOM", AuthorizationAction.Custom)];

    private static readonly (string, MtlsMode)[] MtlsModes =
        [("UNSET", MtlsMode.Unset), ("DISABLE", MtlsMode.Disable), ("PERMISSIVE", MtlsMode.Permissive), ("STRICT", MtlsMode.Strict)];

    // Istio's AuthorizationPolicy condition keys (security/v1beta1 "Authorization Policy Conditions").
    private static readonly string[] ConditionKeyNames =
    [
        "source.ip", "remote.ip", "source.namespace", "source.principal", "request.auth.principal", "request.auth.audiences",
        "request.auth.presenter", "destination.ip", "destination.port", "connection.sni",
    ];
    private static readonly string[] ConditionKeyPrefixes = ["request.headers[", "request.auth.claims[", "experimental.envoy.filters."];

    /// <summary>WorkloadSelector-scoped L4 policies by (namespace, label): a workload lists the keys of those that select it.</summary>
    private readonly SelectorIndex<string> _policySelectors = new();

    private void TranslateAuthorizationPolicies()
    {
        foreach (KubeObject o in _authorizationPolicies)
        {
            if (ParseOnce(o, ParseAuthorizationPolicy) is not { } policy)
            {
                continue;
            }
            _objectsOut.Add(policy);
            if (Once(memory.ZtunnelPolicies, policy, p => ToZtunnel(o, p)) is { } l4)
            {
                _policiesOut.Add(l4);
                if (l4.Scope == PolicyScope.WorkloadSelector)
                {
                    _policySelectors.Add(l4.Namespace, policy.Selector!, l4.Key, emptyMatchesAll: true);
                }
            }
        }
    }

    private static IstioAuthorizationPolicy? ParseAuthorizationPolicy(KubeObject o, YamlConfigReader r)
    {
        string ns = NamespaceOf(o);
        YamlMappingNode? spec = KubeYaml.Map(r, o.Body, "spec", "");
        ImmutableDictionary<string, string>? selector = null;
        var targets = ImmutableArray.CreateBuilder<IstioTargetRef>();
        AuthorizationAction action = AuthorizationAction.Allow;
        string? provider = null;
        ImmutableArray<IstioAuthorizationRule> rules = [];
        YamlNode? targetRefNode = null, targetRefsNode = null, providerNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode value) in spec is null ? [] : r.Entries(spec, "spec"))
        {
            string f = Child("spec", key);
            switch (key)
            {
                case "selector":
                    selector = Selector(r, spec, key, "spec", bare: false);
                    break;
                case "targetRef":
                    targetRefNode = value;
                    if (TargetRef(r, value, f, ns) is { } t)
                    {
                        targets.Add(t);
                    }
                    break;
                case "targetRefs":
                    targetRefsNode = value;
                    YamlSequenceNode? seq = r.Sequence(value, f);
                    for (int i = 0; seq is not null && i < seq.Children.Count; i++)
                    {
                        if (TargetRef(r, seq.Children[i], Index(f, i), ns) is { } t2)
                        {
                            targets.Add(t2);
                        }
                    }
                    break;
                case "action":
                    action = r.Enum(value, f, AuthorizationActions) ?? action;
                    break;
                case "provider":
                    providerNode = value;
                    provider = KubeYaml.Str(r, r.Mapping(value, f), "name", f);
                    break;
                case "rules":
                    rules = Rules(r, value, f);
                    break;
                default:
                    // Strict: a misspelt "rule:" or "selectr:" would silently widen or drop what the policy guards.
                    r.UnknownKey(k, "spec", AuthzSpecKeys, strict: true);
                    break;
            }
        }
        // Istio's validation (pilot/pkg/config/validation) rejects these; admission would never let them in.
        if (selector is not null && targets.Count > 0)
        {
            r.Error(targetRefNode ?? targetRefsNode, "spec.targetRefs", "selector and targetRef(s) are mutually exclusive");
        }
        if (targetRefNode is not null && targetRefsNode is not null)
        {
            r.Error(targetRefNode, "spec.targetRef", "targetRef and targetRefs are mutually exclusive; use targetRefs");
        }
        if (action == AuthorizationAction.Custom && string.IsNullOrEmpty(provider))
        {
            r.Error(providerNode ?? spec ?? o.Body, "spec.provider.name", "required: a CUSTOM policy names its extension provider");
        }
        if (action != AuthorizationAction.Custom && providerNode is not null)
        {
            r.Error(providerNode, "spec.provider", "only a CUSTOM policy has a provider");
        }
        bool dryRun = false;
        if (o.Annotations.TryGetValue(KubeLabels.DryRun, out string? dry))
        {
            if (!bool.TryParse(dry, out dryRun))
            {
                r.Error(o.Body, $"metadata.annotations[\"{KubeLabels.DryRun}\"]", $"'{dry}' is not a boolean (true or false)");
            }
        }
        return new IstioAuthorizationPolicy
        {
            Namespace = ns,
            Name = o.Name,
            Selector = selector,
            TargetRefs = targets.ToImmutable(),
            Action = action,
            Provider = provider,
            Rules = rules,
            DryRun = dryRun,
        };
    }

    private static IstioTargetRef? TargetRef(YamlConfigReader r, YamlNode node, string path, string policyNamespace)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return null;
        }
        string group = "", kind = "", name = "", ns = policyNamespace;
        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            switch (key)
            {
                case "group":
                    group = r.String(value, Child(path, key)) ?? "";
                    break;
                case "kind":
                    kind = r.String(value, Child(path, key)) ?? "";
                    break;
                case "name":
                    name = r.String(value, Child(path, key)) ?? "";
                    break;
                case "namespace":
                    ns = r.String(value, Child(path, key)) ?? ns;
                    break;
                default:
                    r.UnknownKey(k, path, TargetRefKeys, strict: true);
                    break;
            }
        }
        if (kind.Length == 0 || name.Length == 0)
        {
            r.Error(map, path, "a target needs kind and name (e.g. {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint})");
            return null;
        }
        return new IstioTargetRef(group, kind, name, ns);
    }

    private static ImmutableArray<IstioAuthorizationRule> Rules(YamlConfigReader r, YamlNode node, string path)
    {
        YamlSequenceNode? seq = r.Sequence(node, path);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<IstioAuthorizationRule>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string p = Index(path, i);
            if (YamlConfigReader.IsNull(seq.Children[i]))
            {
                b.Add(new IstioAuthorizationRule()); // "- {}" and "-" alike: a rule that matches everything
                continue;
            }
            YamlMappingNode? map = r.Mapping(seq.Children[i], p);
            if (map is null)
            {
                continue;
            }
            var rule = new IstioAuthorizationRule();
            foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, p))
            {
                string f = Child(p, key);
                switch (key)
                {
                    case "from":
                        rule = rule with { From = Items(r, value, f, "source", ParseSource) };
                        break;
                    case "to":
                        rule = rule with { To = Items(r, value, f, "operation", ParseOperation) };
                        break;
                    case "when":
                        rule = rule with { When = Conditions(r, value, f) };
                        break;
                    default:
                        r.UnknownKey(k, p, RuleKeys, strict: true);
                        break;
                }
            }
            b.Add(rule);
        }
        return b.ToImmutable();
    }

    /// <summary><c>from: [{source: ...}]</c> or <c>to: [{operation: ...}]</c>: each entry holds exactly one non-empty inner object.</summary>
    private static ImmutableArray<T> Items<T>(YamlConfigReader r, YamlNode node, string path, string inner, Func<YamlConfigReader, YamlMappingNode, string, T?> parse)
        where T : class
    {
        YamlSequenceNode? seq = r.Sequence(node, path);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<T>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string p = Index(path, i);
            YamlMappingNode? entry = r.Mapping(seq.Children[i], p);
            if (entry is null)
            {
                r.Error(seq.Children[i], p, $"empty entry; expected {{{inner}: ...}}");
                continue;
            }
            YamlMappingNode? body = null;
            foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(entry, p))
            {
                if (key == inner)
                {
                    body = r.Mapping(value, Child(p, key));
                }
                else
                {
                    r.UnknownKey(k, p, [inner], strict: true);
                }
            }
            string bp = Child(p, inner);
            if (body is null || body.Children.Count == 0)
            {
                // Istio rejects an empty source/operation: it would match everything, rarely what was meant.
                r.Error(body ?? (YamlNode)entry, bp, $"{inner} must not be empty");
                continue;
            }
            if (parse(r, body, bp) is { } item)
            {
                b.Add(item);
            }
        }
        return b.ToImmutable();
    }

    private static IstioAuthorizationSource? ParseSource(YamlConfigReader r, YamlMappingNode map, string path)
    {
        var s = new IstioAuthorizationSource();
        foreach ((YamlScalarNode k, string key, _) in r.Entries(map, path))
        {
            s = key switch
            {
                "principals" => s with { Principals = KubeYaml.Strings(r, map, key, path) },
                "notPrincipals" => s with { NotPrincipals = KubeYaml.Strings(r, map, key, path) },
                "requestPrincipals" => s with { RequestPrincipals = KubeYaml.Strings(r, map, key, path) },
                "notRequestPrincipals" => s with { NotRequestPrincipals = KubeYaml.Strings(r, map, key, path) },
                "namespaces" => s with { Namespaces = KubeYaml.Strings(r, map, key, path) },
                "notNamespaces" => s with { NotNamespaces = KubeYaml.Strings(r, map, key, path) },
                "serviceAccounts" => s with { ServiceAccounts = ServiceAccounts(r, map, key, path) },
                "notServiceAccounts" => s with { NotServiceAccounts = ServiceAccounts(r, map, key, path) },
                "ipBlocks" => s with { IpBlocks = KubeYaml.Cidrs(r, map, key, path) },
                "notIpBlocks" => s with { NotIpBlocks = KubeYaml.Cidrs(r, map, key, path) },
                "remoteIpBlocks" => s with { RemoteIpBlocks = KubeYaml.Cidrs(r, map, key, path) },
                "notRemoteIpBlocks" => s with { NotRemoteIpBlocks = KubeYaml.Cidrs(r, map, key, path) },
                _ => Unknown(r, k, path, SourceKeys, s),
            };
        }
        return s;
    }

    private static ImmutableArray<string> ServiceAccounts(YamlConfigReader r, YamlMappingNode map, string key, string path)
    {
        ImmutableArray<string> values = KubeYaml.Strings(r, map, key, path);
        foreach (string v in values)
        {
            // Istio: "ns/sa" or a bare "sa" of the policy's namespace; no globs (it is an exact identity match).
            if (v.Length == 0 || v.Contains('*') || v.IndexOf('/') != v.LastIndexOf('/') || v.StartsWith('/') || v.EndsWith('/'))
            {
                r.Error(KubeYaml.Get(map, key), Child(path, key), $"'{v}' is not a service account (\"name\" or \"namespace/name\", no wildcards)");
            }
        }
        return values;
    }

    private static IstioAuthorizationOperation? ParseOperation(YamlConfigReader r, YamlMappingNode map, string path)
    {
        var op = new IstioAuthorizationOperation();
        foreach ((YamlScalarNode k, string key, _) in r.Entries(map, path))
        {
            op = key switch
            {
                "hosts" => op with { Hosts = KubeYaml.Strings(r, map, key, path) },
                "notHosts" => op with { NotHosts = KubeYaml.Strings(r, map, key, path) },
                "ports" => op with { Ports = KubeYaml.PortList(r, map, key, path) },
                "notPorts" => op with { NotPorts = KubeYaml.PortList(r, map, key, path) },
                "methods" => op with { Methods = KubeYaml.Strings(r, map, key, path) },
                "notMethods" => op with { NotMethods = KubeYaml.Strings(r, map, key, path) },
                "paths" => op with { Paths = KubeYaml.Strings(r, map, key, path) },
                "notPaths" => op with { NotPaths = KubeYaml.Strings(r, map, key, path) },
                _ => Unknown(r, k, path, OperationKeys, op),
            };
        }
        return op;
    }

    private static T Unknown<T>(YamlConfigReader r, YamlScalarNode key, string path, string[] known, T value)
    {
        // Strict: an ignored, misspelt match field would make an ALLOW rule broader.
        r.UnknownKey(key, path, known, strict: true);
        return value;
    }

    private static ImmutableArray<IstioAuthorizationCondition> Conditions(YamlConfigReader r, YamlNode node, string path)
    {
        YamlSequenceNode? seq = r.Sequence(node, path);
        if (seq is null)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<IstioAuthorizationCondition>(seq.Children.Count);
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string p = Index(path, i);
            YamlMappingNode? map = r.Mapping(seq.Children[i], p);
            if (map is null)
            {
                r.Error(seq.Children[i], p, "empty condition; expected {key: ..., values: [...]}");
                continue;
            }
            foreach ((YamlScalarNode k, string key, _) in r.Entries(map, p))
            {
                if (Array.IndexOf(ConditionKeys, key) < 0)
                {
                    r.UnknownKey(k, p, ConditionKeys, strict: true);
                }
            }
            string? condKey = KubeYaml.Str(r, map, "key", p);
            ImmutableArray<string> values = KubeYaml.Strings(r, map, "values", p);
            ImmutableArray<string> notValues = KubeYaml.Strings(r, map, "notValues", p);
            if (string.IsNullOrEmpty(condKey))
            {
                r.Error(map, Child(p, "key"), "required: the attribute to check (e.g. source.ip, request.headers[x-user])");
                continue;
            }
            if (!IsConditionKey(condKey))
            {
                r.Error(KubeYaml.Get(map, "key"), Child(p, "key"),
                    $"'{condKey}' is not an Istio condition key; expected one of {string.Join(", ", ConditionKeyNames)}, request.headers[...], request.auth.claims[...]");
                continue;
            }
            if (values.IsEmpty && notValues.IsEmpty)
            {
                r.Error(map, p, "a condition needs values or notValues");
                continue;
            }
            CheckConditionValues(r, map, "values", p, condKey, values);
            CheckConditionValues(r, map, "notValues", p, condKey, notValues);
            b.Add(new IstioAuthorizationCondition(condKey, values, notValues));
        }
        return b.ToImmutable();
    }

    private static bool IsConditionKey(string key)
    {
        if (Array.IndexOf(ConditionKeyNames, key) >= 0)
        {
            return true;
        }
        foreach (string prefix in ConditionKeyPrefixes)
        {
            if (key.StartsWith(prefix, StringComparison.Ordinal) && key.Length > prefix.Length && (prefix.EndsWith('.') || key.EndsWith(']')))
            {
                return true;
            }
        }
        return false;
    }

    private static void CheckConditionValues(YamlConfigReader r, YamlMappingNode map, string field, string path, string key, ImmutableArray<string> values)
    {
        YamlSequenceNode? seq = KubeYaml.Get(map, field) as YamlSequenceNode;
        for (int i = 0; i < values.Length; i++)
        {
            YamlNode? at = seq is not null && i < seq.Children.Count ? seq.Children[i] : map;
            string p = Index(Child(path, field), i);
            if (key is "source.ip" or "remote.ip" or "destination.ip" && !ConfigValues.TryParseCidr(values[i], out _, out string error))
            {
                r.Error(at, p, error);
            }
            else if (key is "destination.port" && (!int.TryParse(values[i], out int port) || port is < 1 or > 65535))
            {
                r.Error(at, p, $"'{values[i]}' is not a port (1-65535)");
            }
        }
    }

    /// <summary>
    /// The L4 policy ztunnel enforces for an Istio AuthorizationPolicy, following istiod's ambient translation
    /// (pilot/pkg/serviceregistry/kube/controller/ambient/authorization.go), or null when ztunnel has no part in it:
    /// <list type="bullet">
    /// <item>A policy with targetRef(s) is for a waypoint (or gateway), not ztunnel.</item>
    /// <item>AUDIT and CUSTOM are not enforced by ztunnel (Istio does the same and reports it in the policy's
    /// status); here a warning says so. Neither allows or denies on its own, so leaving them out changes no
    /// verdict except CUSTOM's, which needs its external authorizer at a waypoint.</item>
    /// <item>Scope: a selector makes it WorkloadSelector (the selected workloads list its key); without one it is
    /// Namespace-wide, or Global in the root namespace.</item>
    /// <item>Each Istio rule becomes one L4 rule of up to three kinds of clauses, ANDed: the <c>to</c> entries
    /// (ports), the <c>from</c> entries (namespaces, principals, service accounts, ipBlocks), one clause per
    /// <c>when</c> condition on an L4 key.</item>
    /// <item>HTTP-only fields (hosts, methods, paths, requestPrincipals, remoteIpBlocks, non-L4 <c>when</c> keys)
    /// cannot be seen by ztunnel. In an ALLOW policy the whole rule holding one is dropped: it can never match, so
    /// the policy allows less than written. In a DENY policy the HTTP part is ignored and the rule denies on its
    /// L4 part alone: it denies more than written. Both fail closed, which is what Istio documents for ztunnel
    /// ("more restrictive than requested"); a warning names the fields. (Istio's generated form leaves an empty
    /// match behind, which ztunnel's matcher skips, so there the L4-only DENY would not fire; dropping the
    /// clause instead gives the documented, safer result.)</item>
    /// </list>
    /// </summary>
    private AuthorizationPolicy? ToZtunnel(KubeObject o, IstioAuthorizationPolicy p)
    {
        if (!p.TargetRefs.IsEmpty)
        {
            return null;
        }
        PolicyAction action;
        switch (p.Action)
        {
            case AuthorizationAction.Allow:
                action = PolicyAction.Allow;
                break;
            case AuthorizationAction.Deny:
                action = PolicyAction.Deny;
                break;
            default:
                Warn(o, null, "spec.action",
                    $"ztunnel does not enforce {p.Action.ToString().ToUpperInvariant()} policies; target a waypoint (targetRefs) to enforce it there");
                return null;
        }
        PolicyScope scope = p.Selector is not null ? PolicyScope.WorkloadSelector
            : p.Namespace == options.RootNamespace ? PolicyScope.Global
            : PolicyScope.Namespace;

        var rules = ImmutableArray.CreateBuilder<PolicyRule>(p.Rules.Length);
        var l7Fields = new SortedSet<string>(StringComparer.Ordinal);
        foreach (IstioAuthorizationRule rule in p.Rules)
        {
            PolicyRule l4 = ToZtunnelRule(rule, p.Namespace, l7Fields, out bool hasL7);
            if (hasL7 && action == PolicyAction.Allow)
            {
                continue; // an ALLOW rule that needs HTTP can never match at ztunnel
            }
            rules.Add(l4);
        }
        if (l7Fields.Count > 0)
        {
            string effect = action == PolicyAction.Allow
                ? "Within an ALLOW policy, rules matching HTTP attributes are omitted"
                : "This DENY policy is enforced without its HTTP rules";
            Warn(o, null, "spec.rules",
                $"ztunnel does not support HTTP attributes (found: {string.Join(", ", l7Fields)}). In ambient mode a waypoint must enforce HTTP rules (use targetRefs). {effect}: more restrictive than written");
        }
        return new AuthorizationPolicy
        {
            Name = p.Name,
            Namespace = p.Namespace,
            Scope = scope,
            Action = action,
            DryRun = p.DryRun,
            Rules = rules.ToImmutable(),
        };
    }

    private static PolicyRule ToZtunnelRule(IstioAuthorizationRule rule, string policyNamespace, SortedSet<string> l7Fields, out bool hasL7)
    {
        hasL7 = false;
        var clauses = ImmutableArray.CreateBuilder<PolicyClause>(3);

        if (!rule.To.IsEmpty)
        {
            var matches = ImmutableArray.CreateBuilder<PolicyMatch>(rule.To.Length);
            bool matchesAll = false;
            foreach (IstioAuthorizationOperation op in rule.To)
            {
                bool l7 = AddL7(op.L7Fields(), l7Fields);
                hasL7 |= l7;
                var m = new PolicyMatch { DestinationPorts = op.Ports, NotDestinationPorts = op.NotPorts };
                if (op.Ports.IsEmpty && op.NotPorts.IsEmpty)
                {
                    matchesAll |= l7; // only HTTP fields: at L4 this entry is "any"
                    continue;
                }
                matches.Add(m);
            }
            if (!matchesAll)
            {
                clauses.Add(new PolicyClause(matches.ToImmutable()));
            }
        }

        if (!rule.From.IsEmpty)
        {
            var matches = ImmutableArray.CreateBuilder<PolicyMatch>(rule.From.Length);
            bool matchesAll = false;
            foreach (IstioAuthorizationSource s in rule.From)
            {
                bool l7 = AddL7(s.L7Fields(), l7Fields);
                hasL7 |= l7;
                var m = new PolicyMatch
                {
                    SourceIps = s.IpBlocks,
                    NotSourceIps = s.NotIpBlocks,
                    Namespaces = Globs(s.Namespaces),
                    NotNamespaces = Globs(s.NotNamespaces),
                    Principals = Globs(s.Principals),
                    NotPrincipals = Globs(s.NotPrincipals),
                    NamespacedServiceAccounts = ServiceAccountMatches(s.ServiceAccounts, policyNamespace),
                    NotNamespacedServiceAccounts = ServiceAccountMatches(s.NotServiceAccounts, policyNamespace),
                };
                if (IsEmpty(m))
                {
                    matchesAll |= l7;
                    continue;
                }
                matches.Add(m);
            }
            if (!matchesAll)
            {
                clauses.Add(new PolicyClause(matches.ToImmutable()));
            }
        }

        foreach (IstioAuthorizationCondition c in rule.When)
        {
            if (!c.IsL4)
            {
                hasL7 = true;
                l7Fields.Add(c.Key);
                continue; // at L4 the condition is "any"
            }
            clauses.Add(new PolicyClause([WhenMatch(c)]));
        }
        return new PolicyRule(clauses.ToImmutable());
    }

    private static bool AddL7(IEnumerable<string> fields, SortedSet<string> into)
    {
        bool any = false;
        foreach (string f in fields)
        {
            into.Add(f);
            any = true;
        }
        return any;
    }

    private static PolicyMatch WhenMatch(IstioAuthorizationCondition c) => c.Key switch
    {
        "source.ip" => new PolicyMatch { SourceIps = CidrsOf(c.Values), NotSourceIps = CidrsOf(c.NotValues) },
        "destination.ip" => new PolicyMatch { DestinationIps = CidrsOf(c.Values), NotDestinationIps = CidrsOf(c.NotValues) },
        "destination.port" => new PolicyMatch { DestinationPorts = PortsOf(c.Values), NotDestinationPorts = PortsOf(c.NotValues) },
        "source.namespace" => new PolicyMatch { Namespaces = Globs(c.Values), NotNamespaces = Globs(c.NotValues) },
        _ /* source.principal */ => new PolicyMatch { Principals = Globs(c.Values), NotPrincipals = Globs(c.NotValues) },
    };

    private static ImmutableArray<StringMatch> Globs(ImmutableArray<string> values)
    {
        if (values.IsDefaultOrEmpty)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<StringMatch>(values.Length);
        foreach (string v in values)
        {
            b.Add(Glob(v));
        }
        return b.MoveToImmutable();
    }

    private static ImmutableArray<ServiceAccountMatch> ServiceAccountMatches(ImmutableArray<string> values, string policyNamespace)
    {
        if (values.IsDefaultOrEmpty)
        {
            return [];
        }
        var b = ImmutableArray.CreateBuilder<ServiceAccountMatch>(values.Length);
        foreach (string v in values)
        {
            int slash = v.IndexOf('/');
            b.Add(slash < 0 ? new ServiceAccountMatch(policyNamespace, v) : new ServiceAccountMatch(v[..slash], v[(slash + 1)..]));
        }
        return b.MoveToImmutable();
    }

    private static ImmutableArray<IpNet> CidrsOf(ImmutableArray<string> values)
    {
        var b = ImmutableArray.CreateBuilder<IpNet>(values.Length);
        foreach (string v in values)
        {
            if (ConfigValues.TryParseCidr(v, out IpNet net, out _))
            {
                b.Add(net); // validated when parsed
            }
        }
        return b.ToImmutable();
    }

    private static ImmutableArray<int> PortsOf(ImmutableArray<string> values)
    {
        var b = ImmutableArray.CreateBuilder<int>(values.Length);
        foreach (string v in values)
        {
            if (int.TryParse(v, out int p))
            {
                b.Add(p);
            }
        }
        return b.ToImmutable();
    }

    private static bool IsEmpty(PolicyMatch m) =>
        m.Namespaces.IsDefaultOrEmpty && m.NotNamespaces.IsDefaultOrEmpty
        && m.NamespacedServiceAccounts.IsDefaultOrEmpty && m.NotNamespacedServiceAccounts.IsDefaultOrEmpty
        && m.Principals.IsDefaultOrEmpty && m.NotPrincipals.IsDefaultOrEmpty
        && m.SourceIps.IsDefaultOrEmpty && m.NotSourceIps.IsDefaultOrEmpty;

    /// <summary>Keys of the WorkloadSelector policies selecting a workload: those of its namespace and of the root namespace.</summary>
    private ImmutableArray<string> PoliciesFor(string ns, ImmutableDictionary<string, string> labels, List<string> scratch)
    {
        if (_policySelectors.Count == 0)
        {
            return [];
        }
        scratch.Clear();
        _policySelectors.Select(ns, labels, scratch);
        if (ns != options.RootNamespace)
        {
            _policySelectors.Select(options.RootNamespace, labels, scratch);
        }
        if (scratch.Count == 0)
        {
            return [];
        }
        if (scratch.Count == 1)
        {
            // The common case (one policy per app): every replica shares one list.
            if (!_singlePolicyLists.TryGetValue(scratch[0], out ImmutableArray<string> one))
            {
                _singlePolicyLists[scratch[0]] = one = [scratch[0]];
            }
            return one;
        }
        scratch.Sort(StringComparer.Ordinal);
        return [.. scratch];
    }

    private readonly Dictionary<string, ImmutableArray<string>> _singlePolicyLists = new(StringComparer.Ordinal);

    // ---- PeerAuthentication ----

    private void TranslatePeerAuthentications()
    {
        foreach (KubeObject o in _peerAuthentications)
        {
            if (ParseOnce(o, ParsePeerAuthentication) is { } pa)
            {
                _objectsOut.Add(pa);
            }
        }
    }

    private static PeerAuthentication? ParsePeerAuthentication(KubeObject o, YamlConfigReader r)
    {
        YamlMappingNode? spec = KubeYaml.Map(r, o.Body, "spec", "");
        ImmutableDictionary<string, string>? selector = null;
        MtlsMode mode = MtlsMode.Unset;
        var ports = ImmutableDictionary.CreateBuilder<int, MtlsMode>();
        YamlNode? portNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode value) in spec is null ? [] : r.Entries(spec, "spec"))
        {
            string f = Child("spec", key);
            switch (key)
            {
                case "selector":
                    selector = Selector(r, spec, key, "spec", bare: false);
                    break;
                case "mtls":
                    mode = MtlsModeOf(r, value, f) ?? mode;
                    break;
                case "portLevelMtls":
                    portNode = value;
                    YamlMappingNode? map = r.Mapping(value, f);
                    foreach ((YamlScalarNode pk, string portText, YamlNode pv) in map is null ? [] : r.Entries(map, f))
                    {
                        string pf = $"{f}[{portText}]";
                        if (r.Port(pk, pf, allowZero: false) is int port && MtlsModeOf(r, pv, pf) is MtlsMode pm)
                        {
                            ports[port] = pm;
                        }
                    }
                    break;
                default:
                    r.UnknownKey(k, "spec", ["selector", "mtls", "portLevelMtls"], strict: true);
                    break;
            }
        }
        if (ports.Count > 0 && selector is not { Count: > 0 })
        {
            // Istio's validation: port numbers only mean something for the selected workloads' own ports.
            r.Error(portNode, "spec.portLevelMtls", "portLevelMtls requires a workload selector (spec.selector.matchLabels)");
        }
        YamlMappingNode? metadata = KubeYaml.Get(o.Body, "metadata") as YamlMappingNode;
        return new PeerAuthentication
        {
            Namespace = NamespaceOf(o),
            Name = o.Name,
            Selector = selector,
            Mode = mode,
            PortLevelMtls = ports.ToImmutable(),
            CreationTimestamp = KubeYaml.Timestamp(metadata, "creationTimestamp"),
        };
    }

    private static MtlsMode? MtlsModeOf(YamlConfigReader r, YamlNode node, string path)
    {
        YamlMappingNode? map = r.Mapping(node, path);
        if (map is null)
        {
            return null;
        }
        MtlsMode? mode = null;
        foreach ((YamlScalarNode k, string key, YamlNode value) in r.Entries(map, path))
        {
            if (key == "mode")
            {
                mode = r.Enum(value, Child(path, key), MtlsModes);
            }
            else
            {
                r.UnknownKey(k, path, ["mode"], strict: true);
            }
        }
        return mode;
    }
}
