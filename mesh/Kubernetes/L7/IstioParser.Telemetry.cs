using System.Collections.Immutable;
using Ambient.Mesh.Model.L7;
using YamlDotNet.RepresentationModel;
using static Ambient.Mesh.Config.YamlConfigReader;

namespace Ambient.Mesh.Kubernetes.L7;

internal sealed partial class IstioParser
{
    private static readonly string[] TelemetryKeys = ["selector", "targetRef", "targetRefs", "tracing", "accessLogging", "metrics"];
    private static readonly string[] TracingKeys =
    [
        "match", "providers", "randomSamplingPercentage", "disableSpanReporting", "customTags", "useRequestIdForTraceSampling",
        "enableIstioTags", "disableContextPropagation",
    ];
    private static readonly string[] AccessLoggingKeys = ["match", "providers", "disabled", "filter"];
    private static readonly string[] MetricsKeys = ["providers", "overrides", "reportingInterval"];
    private static readonly string[] OverrideKeys = ["match", "disabled", "tagOverrides"];
    private static readonly string[] MetricSelectorKeys = ["metric", "customMetric", "mode"];
    private static readonly string[] CustomTagKeys = ["literal", "environment", "header", "formatter"];

    private static readonly (string, WorkloadMode)[] WorkloadModes =
        [("CLIENT_AND_SERVER", WorkloadMode.ClientAndServer), ("CLIENT", WorkloadMode.Client), ("SERVER", WorkloadMode.Server)];

    private static readonly string[] StandardMetrics =
    [
        "ALL_METRICS", "REQUEST_COUNT", "REQUEST_DURATION", "REQUEST_SIZE", "RESPONSE_SIZE", "TCP_OPENED_CONNECTIONS",
        "TCP_CLOSED_CONNECTIONS", "TCP_SENT_BYTES", "TCP_RECEIVED_BYTES", "GRPC_REQUEST_MESSAGES", "GRPC_RESPONSE_MESSAGES",
    ];

    /// <summary>What Istio lets a policy's targetRef name (group, kind).</summary>
    private static readonly (string Group, string Kind)[] AllowedTargets =
    [
        ("", "Service"), ("networking.istio.io", "ServiceEntry"),
        ("gateway.networking.k8s.io", "Gateway"), ("gateway.networking.k8s.io", "GatewayClass"),
    ];

    public Telemetry? Telemetry(YamlNode spec, string path, string ns, string name)
    {
        var telemetry = new Telemetry { Namespace = ns, Name = name };
        var selectors = new List<YamlScalarNode>();
        var targets = ImmutableArray.CreateBuilder<PolicyTargetReference>();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(spec, path))
        {
            switch (key)
            {
                case "selector":
                    selectors.Add(k);
                    telemetry = telemetry with { Selector = WorkloadSelector(v, p) };
                    break;
                case "targetRef":
                    selectors.Add(k);
                    if (TargetRef(v, p) is { } target)
                    {
                        targets.Add(target);
                    }
                    break;
                case "targetRefs":
                    selectors.Add(k);
                    targets.AddRange(s.List(v, p, 16, TargetRef));
                    break;
                case "tracing":
                    telemetry = telemetry with { Tracing = s.List(v, p, int.MaxValue, Tracing) };
                    if (telemetry.Tracing.Length > 1)
                    {
                        s.Warning(v, p, "only the first tracing entry is used");
                    }
                    break;
                case "accessLogging":
                    telemetry = telemetry with { AccessLogging = s.List(v, p, int.MaxValue, AccessLogging) };
                    break;
                case "metrics":
                    telemetry = telemetry with { Metrics = s.List(v, p, int.MaxValue, Metrics) };
                    break;
                default:
                    s.Unknown(k, path, TelemetryKeys);
                    break;
            }
        }
        for (int i = 1; i < selectors.Count; i++)
        {
            s.Error(selectors[i], Child(path, selectors[i].Value ?? ""), $"only one of selector, targetRef and targetRefs can be set (already {selectors[0].Value})");
        }
        return telemetry with { TargetRefs = targets.ToImmutable() };
    }

    private PolicyTargetReference? TargetRef(YamlNode node, string path)
    {
        (string group, string? kind, string? name, string? ns, YamlNode? nsNode) = s.ObjectRef(node, path, withNamespace: true);
        if (ns is not null)
        {
            s.Error(nsNode, Child(path, "namespace"), "cross-namespace references are not supported; leave namespace empty");
        }
        bool ok = s.Require(node, path, "kind", "the target's kind");
        ok &= s.Require(node, path, "name", "the target's name");
        if (!ok || kind is null || name is null)
        {
            return null;
        }
        if (!Array.Exists(AllowedTargets, t => t.Group == group && t.Kind == kind))
        {
            s.Error(node, path, $"targetRef must be a Service, a ServiceEntry (networking.istio.io), a Gateway or a GatewayClass (gateway.networking.k8s.io), not {kind}{(group.Length > 0 ? "." + group : "")}");
            return null;
        }
        return new PolicyTargetReference(group, kind, name);
    }

    private ImmutableArray<string> Providers(YamlNode node, string path) =>
        s.List(node, path, int.MaxValue, (n, p) =>
        {
            string? name = null;
            s.OnlyField(n, p, "name", (v, fp) => name = s.NonEmpty(v, fp));
            s.Require(n, p, "name", "the provider's name (from the mesh config's extensionProviders)");
            return name;
        });

    private WorkloadMode Mode(YamlNode node, string path)
    {
        WorkloadMode mode = WorkloadMode.ClientAndServer;
        s.OnlyField(node, path, "mode", (v, p) => mode = s.Enum(v, p, WorkloadModes) ?? mode);
        return mode;
    }

    private TracingConfig? Tracing(YamlNode node, string path)
    {
        var tracing = new TracingConfig();
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "match":
                    tracing = tracing with { Match = Mode(v, p) };
                    break;
                case "providers":
                    tracing = tracing with { Providers = Providers(v, p) };
                    if (tracing.Providers.Length > 1)
                    {
                        s.Warning(v, p, "only the first tracing provider is used");
                    }
                    break;
                case "randomSamplingPercentage":
                    tracing = tracing with { RandomSamplingPercentage = s.Double(v, p, 0, 100) };
                    break;
                case "disableSpanReporting":
                    tracing = tracing with { DisableSpanReporting = s.Bool(v, p) };
                    break;
                case "disableContextPropagation":
                    tracing = tracing with { DisableContextPropagation = s.Bool(v, p) };
                    break;
                case "useRequestIdForTraceSampling":
                    tracing = tracing with { UseRequestIdForTraceSampling = s.Bool(v, p) };
                    break;
                case "enableIstioTags":
                    tracing = tracing with { EnableIstioTags = s.Bool(v, p) };
                    break;
                case "customTags":
                    tracing = tracing with { CustomTags = s.Map(v, p, CustomTag) };
                    break;
                default:
                    s.Unknown(k, path, TracingKeys);
                    break;
            }
        }
        return tracing;
    }

    private CustomTag? CustomTag(YamlScalarNode key, string tag, YamlNode node, string path)
    {
        if (tag.Length == 0)
        {
            s.Error(key, path, "a tag name cannot be empty");
            return null;
        }
        CustomTag? result = null;
        YamlScalarNode? first = null;
        foreach ((YamlScalarNode k, string kind, YamlNode v, string p) in s.Fields(node, path))
        {
            if (!CustomTagKeys.Contains(kind))
            {
                s.Unknown(k, path, CustomTagKeys);
                continue;
            }
            if (first is not null)
            {
                s.Error(k, p, $"only one of literal, environment, header and formatter can be set (already {first.Value})");
                continue;
            }
            first = k;
            string? name = null, value = null, fallback = null;
            string wanted = kind is "literal" or "formatter" ? "value" : "name";
            foreach ((YamlScalarNode fk, string f, YamlNode fv, string fp) in s.Fields(v, p))
            {
                switch (f)
                {
                    case "value" when wanted == "value":
                        value = s.NonEmpty(fv, fp);
                        break;
                    case "name" when wanted == "name":
                        name = s.NonEmpty(fv, fp);
                        break;
                    case "defaultValue" when wanted == "name":
                        fallback = s.String(fv, fp);
                        break;
                    default:
                        s.Unknown(fk, p, wanted == "value" ? ["value"] : ["name", "defaultValue"]);
                        break;
                }
            }
            if (!s.Require(v, p, wanted, kind == "header" ? "the header name" : kind == "environment" ? "the variable name" : "the value"))
            {
                continue;
            }
            CustomTagType type = kind switch
            {
                "literal" => CustomTagType.Literal,
                "environment" => CustomTagType.Environment,
                "header" => CustomTagType.Header,
                _ => CustomTagType.Formatter,
            };
            result = new CustomTag(type, name, value, fallback);
        }
        if (first is null)
        {
            s.Error(node, path, "a custom tag needs one of literal, environment, header or formatter");
        }
        return result;
    }

    private AccessLoggingConfig? AccessLogging(YamlNode node, string path)
    {
        WorkloadMode mode = WorkloadMode.ClientAndServer;
        ImmutableArray<string> providers = [];
        bool? disabled = null;
        string? filter = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "match":
                    mode = Mode(v, p);
                    break;
                case "providers":
                    providers = Providers(v, p);
                    break;
                case "disabled":
                    disabled = s.Bool(v, p);
                    break;
                case "filter":
                    s.OnlyField(v, p, "expression", (fv, fp) => filter = s.String(fv, fp));
                    break;
                default:
                    s.Unknown(k, path, AccessLoggingKeys);
                    break;
            }
        }
        return new AccessLoggingConfig(mode, providers, disabled, filter);
    }

    private MetricsConfig? Metrics(YamlNode node, string path)
    {
        ImmutableArray<string> providers = [];
        ImmutableArray<MetricsOverride> overrides = [];
        TimeSpan? interval = null;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "providers":
                    providers = Providers(v, p);
                    break;
                case "overrides":
                    overrides = s.List(v, p, int.MaxValue, MetricsOverride);
                    break;
                case "reportingInterval":
                    interval = s.IstioDuration(v, p);
                    break;
                default:
                    s.Unknown(k, path, MetricsKeys);
                    break;
            }
        }
        return new MetricsConfig(providers, overrides, interval);
    }

    private MetricsOverride? MetricsOverride(YamlNode node, string path)
    {
        MetricSelector? match = null;
        bool? disabled = null;
        ImmutableDictionary<string, TagOverride> tags = ImmutableDictionary<string, TagOverride>.Empty;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "match":
                    match = MetricSelector(v, p);
                    break;
                case "disabled":
                    disabled = s.Bool(v, p);
                    break;
                case "tagOverrides":
                    tags = s.Map(v, p, TagOverride);
                    break;
                default:
                    s.Unknown(k, path, OverrideKeys);
                    break;
            }
        }
        return new MetricsOverride(match, disabled, tags);
    }

    private MetricSelector? MetricSelector(YamlNode node, string path)
    {
        string? metric = null, custom = null;
        YamlScalarNode? customKey = null, metricKey = null;
        WorkloadMode mode = WorkloadMode.ClientAndServer;
        foreach ((YamlScalarNode k, string key, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (key)
            {
                case "metric":
                    metricKey = k;
                    metric = s.OneOf(v, p, StandardMetrics);
                    break;
                case "customMetric":
                    customKey = k;
                    custom = s.NonEmpty(v, p);
                    break;
                case "mode":
                    mode = s.Enum(v, p, WorkloadModes) ?? mode;
                    break;
                default:
                    s.Unknown(k, path, MetricSelectorKeys);
                    break;
            }
        }
        if (metricKey is not null && customKey is not null)
        {
            s.Error(customKey, Child(path, "customMetric"), "only one of metric and customMetric can be set");
        }
        return new MetricSelector(metric, custom, mode);
    }

    private TagOverride? TagOverride(YamlScalarNode key, string tag, YamlNode node, string path)
    {
        TagOperation operation = TagOperation.Upsert;
        string? value = null;
        YamlNode? valueNode = null;
        foreach ((YamlScalarNode k, string f, YamlNode v, string p) in s.Fields(node, path))
        {
            switch (f)
            {
                case "operation":
                    operation = s.Enum(v, p, [("UPSERT", TagOperation.Upsert), ("REMOVE", TagOperation.Remove)]) ?? operation;
                    break;
                case "value":
                    valueNode = v;
                    value = s.String(v, p);
                    break;
                default:
                    s.Unknown(k, path, ["operation", "value"]);
                    break;
            }
        }
        if (operation == TagOperation.Upsert && string.IsNullOrEmpty(value))
        {
            s.Missing(node, path, "value", "an UPSERT tag override needs a value (a CEL expression)");
            return null;
        }
        if (operation == TagOperation.Remove && valueNode is not null)
        {
            s.Error(valueNode, Child(path, "value"), "a REMOVE tag override must not have a value");
            return null;
        }
        return new TagOverride(operation, operation == TagOperation.Upsert ? value : null);
    }
}
