using System.Collections.Immutable;
using Ambient.Mesh.Model.L7;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes.L7;

/// <summary>
/// Reads policy.linkerd.io/v1alpha1 HTTPLocalRateLimitPolicy with the checks of Linkerd's CRD and admission
/// webhook (positive rates, per-client limits not above the total, ServiceAccount clients), extended so the
/// target may also be a Service.
/// </summary>
internal sealed class RateLimitPolicyParser(SpecReader s)
{
    private static readonly string[] SpecKeys = ["targetRef", "total", "identity", "overrides"];
    private static readonly string[] OverrideKeys = ["requestsPerSecond", "clientRefs"];

    public HttpLocalRateLimitPolicy? Parse(YamlNode spec, string path, string ns, string name)
    {
        RateLimitTarget? target = null;
        uint? total = null, identity = null;
        YamlNode? identityNode = null;
        ImmutableArray<RateLimitOverride> overrides = [];
        var overrideNodes = new List<(YamlNode Node, string Path, uint Rate)>();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(spec, path))
        {
            switch (key)
            {
                case "targetRef":
                    target = Target(v, p);
                    break;
                case "total":
                    total = Limit(v, p);
                    break;
                case "identity":
                    identityNode = v;
                    identity = Limit(v, p);
                    break;
                case "overrides":
                    overrides = s.List(v, p, int.MaxValue, (n, op) =>
                    {
                        RateLimitOverride? o = Override(n, op);
                        if (o is not null)
                        {
                            overrideNodes.Add((n, op, o.RequestsPerSecond));
                        }
                        return o;
                    });
                    break;
                default:
                    s.Unknown(k, path, SpecKeys);
                    break;
            }
        }
        if (total is uint t)
        {
            // A per-client bucket larger than the shared one could never fill: Linkerd refuses it.
            if (identity > t)
            {
                s.Error(identityNode, Child(Child(path, "identity"), "requestsPerSecond"),
                    $"identity.requestsPerSecond ({identity}) must be less than or equal to total.requestsPerSecond ({t})");
            }
            foreach ((YamlNode n, string op, uint rate) in overrideNodes)
            {
                if (rate > t)
                {
                    s.Error(n, Child(op, "requestsPerSecond"), $"requestsPerSecond ({rate}) must be less than or equal to total.requestsPerSecond ({t})");
                }
            }
        }
        if (!s.Require(spec, path, "targetRef", "the Service or Server to limit") || target is null)
        {
            return null;
        }
        return new HttpLocalRateLimitPolicy
        {
            Namespace = ns,
            Name = name,
            TargetRef = target,
            TotalRequestsPerSecond = total,
            IdentityRequestsPerSecond = identity,
            Overrides = overrides,
        };
    }

    private RateLimitTarget? Target(YamlNode node, string path)
    {
        (string group, string? kind, string? name, _, _) = s.ObjectRef(node, path, withNamespace: false);
        bool ok = s.Require(node, path, "kind", "Service or Server");
        ok &= s.Require(node, path, "name", "the target's name");
        if (!ok || kind is null || name is null)
        {
            return null;
        }
        // Kubernetes spells the core group "" and sometimes "core".
        var target = new RateLimitTarget(group == "core" ? "" : group, kind, name);
        if (!target.IsService && !target.IsServer)
        {
            s.Error(node, path, $"targetRef must be a Service (group \"\", kind Service) or a Linkerd Server (group policy.linkerd.io, kind Server), not {kind}{(group.Length > 0 ? "." + group : "")}");
            return null;
        }
        return target;
    }

    /// <summary><c>{requestsPerSecond: N}</c>, N a positive 32-bit count.</summary>
    private uint? Limit(YamlNode node, string path)
    {
        uint? rate = null;
        s.OnlyField(node, path, "requestsPerSecond", (v, p) => rate = Rate(v, p));
        s.Require(node, path, "requestsPerSecond", "the rate in requests per second");
        return rate;
    }

    private uint? Rate(YamlNode node, string path)
    {
        long? v = s.Long(node, path, long.MinValue, long.MaxValue);
        if (v is null)
        {
            return null;
        }
        if (v <= 0)
        {
            s.Error(node, path, v < 0 ? $"{v} is negative; a rate must be greater than 0" : "a rate must be greater than 0 (remove the limit instead)");
            return null;
        }
        if (v > uint.MaxValue)
        {
            s.Error(node, path, $"{v} is out of range (1-{uint.MaxValue})");
            return null;
        }
        return (uint)v;
    }

    private RateLimitOverride? Override(YamlNode node, string path)
    {
        uint? rate = null;
        ImmutableArray<RateLimitClientRef> clients = [];
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "requestsPerSecond":
                    rate = Rate(v, p);
                    break;
                case "clientRefs":
                    clients = s.List(v, p, int.MaxValue, ClientRef);
                    if (v is YamlSequenceNode { Children.Count: 0 })
                    {
                        s.Error(v, p, "must name at least one ServiceAccount");
                    }
                    break;
                default:
                    s.Unknown(k, path, OverrideKeys);
                    break;
            }
        }
        bool ok = s.Require(node, path, "requestsPerSecond", "the clients' rate in requests per second");
        ok &= s.Require(node, path, "clientRefs", "the ServiceAccounts this override is for");
        return ok && rate is uint r ? new RateLimitOverride(r, clients) : null;
    }

    private RateLimitClientRef? ClientRef(YamlNode node, string path)
    {
        (string group, string? kind, string? name, string? ns, _) = s.ObjectRef(node, path, withNamespace: true);
        bool ok = s.Require(node, path, "kind", "ServiceAccount");
        ok &= s.Require(node, path, "name", "the ServiceAccount's name");
        if (!ok || kind is null || name is null)
        {
            return null;
        }
        if (kind != "ServiceAccount" || group is not ("" or "core"))
        {
            s.Error(node, Child(path, "kind"), $"clientRefs must name a ServiceAccount, not {kind}{(group.Length > 0 ? "." + group : "")}");
            return null;
        }
        return new RateLimitClientRef(name, ns);
    }
}
