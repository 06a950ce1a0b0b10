using System.Collections.Immutable;
using Ambient.Mesh.Model.L7;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes.L7;

internal sealed partial class GatewayRouteParser
{
    private static readonly string[] GrpcRuleKeys = ["name", "matches", "filters", "backendRefs", "sessionPersistence"];
    private static readonly string[] GrpcMatchKeys = ["method", "headers"];
    private static readonly string[] GrpcMethodKeys = ["type", "service", "method"];

    public GrpcRoute GrpcRoute(YamlNode spec, string path, string ns, string name)
    {
        ImmutableArray<GrpcRouteRule> rules = [];
        (ImmutableArray<ParentReference> parents, ImmutableArray<string> hostnames, string? useDefaultGateways) = RouteSpec(spec, path, (v, p) =>
        {
            rules = s.List(v, p, RuleLimit, GrpcRule);
            CheckRules(v, p, rules, r => r.Name, r => r.Matches.Length);
        });
        return new GrpcRoute
        {
            Namespace = ns,
            Name = name,
            ParentRefs = parents,
            Hostnames = hostnames,
            Rules = rules,
            UseDefaultGateways = useDefaultGateways,
        };
    }

    private GrpcRouteRule? GrpcRule(YamlNode node, string path)
    {
        var rule = new GrpcRouteRule();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "name":
                    rule = rule with { Name = RuleName(v, p) };
                    break;
                case "matches":
                    rule = rule with { Matches = s.List(v, p, MatchLimit, GrpcMatch) };
                    break;
                case "filters":
                    rule = rule with { Filters = Filters(v, p, GrpcFilterTypes) };
                    break;
                case "backendRefs":
                    rule = rule with { BackendRefs = BackendRefs(v, p, GrpcFilterTypes) };
                    break;
                case "sessionPersistence":
                    rule = rule with { SessionPersistence = SessionPersistence(v, p) };
                    break;
                default:
                    s.Unknown(k, path, GrpcRuleKeys);
                    break;
            }
        }
        return rule;
    }

    private GrpcRouteMatch? GrpcMatch(YamlNode node, string path)
    {
        GrpcMethodMatch? method = null;
        ImmutableArray<HeaderMatch> headers = [];
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "method":
                    method = MethodMatch(v, p);
                    break;
                case "headers":
                    headers = HeaderMatches(v, p, checkValueShape: false);
                    break;
                default:
                    s.Unknown(k, path, GrpcMatchKeys);
                    break;
            }
        }
        return new GrpcRouteMatch(method, headers);
    }

    private GrpcMethodMatch? MethodMatch(YamlNode node, string path)
    {
        ValueMatchType type = ValueMatchType.Exact;
        string? service = null, method = null;
        YamlNode? serviceNode = null, methodNode = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "type":
                    type = s.Enum(v, p, ValueMatchTypes) ?? type;
                    break;
                case "service":
                    serviceNode = v;
                    service = s.String(v, p, 0, 1024);
                    break;
                case "method":
                    methodNode = v;
                    method = s.String(v, p, 0, 1024);
                    break;
                default:
                    s.Unknown(k, path, GrpcMethodKeys);
                    break;
            }
        }
        // An empty string is as good as absent (Linkerd's check); one of the two must say something.
        service = string.IsNullOrEmpty(service) ? null : service;
        method = string.IsNullOrEmpty(method) ? null : method;
        if (service is null && method is null)
        {
            s.Error(node, path, "one or both of 'service' or 'method' must be specified");
            return null;
        }
        if (type == ValueMatchType.Exact)
        {
            if (service is not null && !KubeNames.GrpcService().IsMatch(service))
            {
                s.Error(serviceNode, Child(path, "service"), $"'{service}' is not a gRPC service name (dot-separated identifiers, e.g. helloworld.Greeter)");
                return null;
            }
            if (method is not null && !KubeNames.GrpcMethod().IsMatch(method))
            {
                s.Error(methodNode, Child(path, "method"), $"'{method}' is not a gRPC method name (an identifier, e.g. SayHello)");
                return null;
            }
            return new GrpcMethodMatch(type, service, method, null, null);
        }
        SafeRegex? serviceRegex = service is null ? null : s.CompileRegex(service, serviceNode!, Child(path, "service"));
        SafeRegex? methodRegex = method is null ? null : s.CompileRegex(method, methodNode!, Child(path, "method"));
        return new GrpcMethodMatch(type, service, method, serviceRegex, methodRegex);
    }
}
