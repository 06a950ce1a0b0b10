using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.L7;
using Ambient.Mesh.Model;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Tests.Kubernetes.L7;

/// <summary>
/// Every field of every full manifest, replaced by a wrong value or removed: parsing never throws, and an object it
/// refuses always comes with at least one error saying why (bad input is refused, never a crash or a silent drop).
/// </summary>
public sealed class L7RobustnessTests
{
    public static TheoryData<string> Manifests() => new()
    {
        nameof(HttpRouteTests), nameof(GrpcRouteTests), nameof(VirtualServiceTests),
        nameof(DestinationRuleTests), nameof(HttpLocalRateLimitPolicyTests), nameof(TelemetryTests),
    };

    private static string ManifestOf(string test) => test switch
    {
        nameof(HttpRouteTests) => HttpRouteTests.Full,
        nameof(GrpcRouteTests) => GrpcRouteTests.Full,
        nameof(VirtualServiceTests) => VirtualServiceTests.Full,
        nameof(DestinationRuleTests) => DestinationRuleTests.Full,
        nameof(HttpLocalRateLimitPolicyTests) => HttpLocalRateLimitPolicyTests.Full,
        _ => TelemetryTests.Full,
    };

    private static readonly Func<YamlNode>[] Replacements =
    [
        () => new YamlScalarNode(""),
        () => new YamlScalarNode("~"),
        () => new YamlScalarNode("-1"),
        () => new YamlScalarNode("99999999999999999999"),
        () => new YamlScalarNode("1e400"),
        () => new YamlScalarNode("7") { Style = ScalarStyle.DoubleQuoted },
        () => new YamlScalarNode("*"),
        () => new YamlScalarNode("a b%(["),
        () => new YamlMappingNode(),
        () => new YamlSequenceNode(),
        () => new YamlSequenceNode(new YamlScalarNode("x")),
        () => new YamlMappingNode(new YamlScalarNode("unexpected"), new YamlScalarNode("1")),
    ];

    [Theory]
    [MemberData(nameof(Manifests))]
    public void EveryMutationIsParsedOrRefusedWithAReason(string test)
    {
        YamlMappingNode original = Load(ManifestOf(test));
        int sites = Sites(original).Count;
        Assert.True(sites > 10, $"{test}: only {sites} nodes found");
        int refused = 0;
        for (int site = 0; site < sites; site++)
        {
            for (int r = 0; r <= Replacements.Length; r++)
            {
                var body = (YamlMappingNode)Clone(original); // cheaper than parsing the text again
                (YamlNode parent, object slot) = Sites(body)[site];
                // The last "replacement" removes the field (or list entry) instead.
                Mutate(parent, slot, r < Replacements.Length ? Replacements[r]() : null);
                var reader = new YamlConfigReader("fuzz.yaml");
                MeshObject? parsed = L7Kinds.Parse(ObjectOf(body), reader);
                if (parsed is null)
                {
                    refused++;
                    Assert.True(reader.HasErrors, $"{test}: site {site} mutation {r} refused without an error");
                }
            }
        }
        Assert.True(refused > sites, $"{test}: only {refused} of {sites * (Replacements.Length + 1)} mutations were refused");
    }

    private static YamlMappingNode Load(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static YamlNode Clone(YamlNode node) => node switch
    {
        YamlMappingNode m => new YamlMappingNode(m.Children.Select(kv => new KeyValuePair<YamlNode, YamlNode>(Clone(kv.Key), Clone(kv.Value)))),
        YamlSequenceNode s => new YamlSequenceNode(s.Children.Select(Clone)),
        YamlScalarNode sc => new YamlScalarNode(sc.Value) { Style = sc.Style },
        _ => throw new NotSupportedException(node.NodeType.ToString()),
    };

    private static KubeObject ObjectOf(YamlMappingNode body)
    {
        string apiVersion = ((YamlScalarNode)body["apiVersion"]).Value!;
        string kind = ((YamlScalarNode)body["kind"]).Value!;
        return new KubeObject(apiVersion, kind, "default", "fuzz", body, "fuzz.yaml");
    }

    /// <summary>Every (parent, key or index) under spec, in document order.</summary>
    private static List<(YamlNode Parent, object Slot)> Sites(YamlMappingNode body)
    {
        var sites = new List<(YamlNode, object)>();
        void Walk(YamlNode node)
        {
            switch (node)
            {
                case YamlMappingNode m:
                    foreach (KeyValuePair<YamlNode, YamlNode> kv in m.Children)
                    {
                        sites.Add((m, kv.Key));
                        Walk(kv.Value);
                    }
                    break;
                case YamlSequenceNode s:
                    for (int i = 0; i < s.Children.Count; i++)
                    {
                        sites.Add((s, i));
                        Walk(s.Children[i]);
                    }
                    break;
            }
        }
        if (body.Children.TryGetValue(new YamlScalarNode("spec"), out YamlNode? spec))
        {
            Walk(spec);
        }
        return sites;
    }

    private static void Mutate(YamlNode parent, object slot, YamlNode? replacement)
    {
        if (parent is YamlMappingNode m)
        {
            var key = (YamlNode)slot;
            if (replacement is null)
            {
                m.Children.Remove(key);
            }
            else
            {
                m.Children[key] = replacement;
            }
        }
        else
        {
            var s = (YamlSequenceNode)parent;
            int i = (int)slot;
            if (replacement is null)
            {
                s.Children.RemoveAt(i);
            }
            else
            {
                s.Children[i] = replacement;
            }
        }
    }
}
