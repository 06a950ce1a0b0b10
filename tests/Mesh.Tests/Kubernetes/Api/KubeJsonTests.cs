using System.Text;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.Api;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ambient.Mesh.Tests.Kubernetes.Api;

/// <summary>API JSON becomes the node tree YamlDotNet builds from the same text, so every source looks alike to the translator.</summary>
public sealed class KubeJsonTests
{
    private const string PodJson = """
        {"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"shop","uid":"4f1c","resourceVersion":"1234",
         "labels":{"app":"web","version":"v1","istio.io/dataplane-mode":"ambient"},"annotations":{"note":"caf\u00e9 \"quoted\"\n\ttab"}},
         "spec":{"nodeName":"node-a","containers":[{"name":"app","ports":[{"containerPort":8080,"name":"http"}],
         "resources":{"limits":{"cpu":0.5,"memory":"128Mi"}}}],"hostNetwork":false,"priority":-1,"x":null,"exp":1e3,
         "unknownFutureField":{"deep":[[1,2],{"a":"80"}]}},
         "status":{"podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}],"phase":"Running"}}
        """;

    [Fact]
    public void The_tree_is_the_one_yamldotnet_builds_from_the_same_json()
    {
        YamlMappingNode ours = KubeJson.ParseObject(Encoding.UTF8.GetBytes(PodJson));

        var stream = new YamlStream();
        stream.Load(new StringReader(PodJson));
        var theirs = (YamlMappingNode)stream.Documents[0].RootNode;

        AssertSameTree(theirs, ours, "$");
    }

    [Fact]
    public void Metadata_is_lifted_into_the_kube_object()
    {
        KubeObject obj = KubeJson.ToKubeObject(KubeJson.ParseObject(Encoding.UTF8.GetBytes(PodJson)), KubeResource.Pod);

        Assert.Equal(new KubeObjectKey("", "Pod", "shop", "web-1"), obj.Key);
        Assert.Equal("4f1c", obj.Uid);
        Assert.Equal("1234", obj.ResourceVersion);
        Assert.Equal("ambient", obj.Labels["istio.io/dataplane-mode"]);
        Assert.Equal("café \"quoted\"\n\ttab", obj.Annotations["note"]);
        Assert.Equal("kubernetes", obj.Origin);
    }

    [Fact]
    public void An_api_object_is_kept_as_compact_json_and_its_body_is_the_same_tree()
    {
        byte[] json = Encoding.UTF8.GetBytes(PodJson);
        KubeObject obj = KubeJson.ToKubeObject(KubeJson.ParseObject(json), KubeResource.Pod);

        // Held as JSON (no larger than what the server sent), not as a node tree.
        Assert.InRange(obj.RetainedJsonBytes, 1, json.Length);
        // The body rebuilt from it is the tree YamlDotNet builds from the original text, scalar styles included.
        var stream = new YamlStream();
        stream.Load(new StringReader(PodJson));
        AssertSameTree((YamlMappingNode)stream.Documents[0].RootNode, obj.Body, "$");
        // Read twice while in use: one tree, not a parse per read.
        YamlMappingNode body = obj.Body;
        Assert.Same(body, obj.Body);
        // A list item without apiVersion/kind gets them in its kept JSON too.
        byte[] item = Encoding.UTF8.GetBytes("""{"metadata":{"name":"n","namespace":"shop"},"spec":{"nodeName":"x"}}""");
        KubeObject fromList = KubeJson.ToKubeObject(KubeJson.ParseObject(item), KubeResource.Pod);
        Assert.Equal("Pod", ((YamlScalarNode)fromList.Body["kind"]).Value);
        Assert.Equal("v1", ((YamlScalarNode)fromList.Body["apiVersion"]).Value);
    }

    [Fact]
    public void A_crd_object_keeps_its_group_and_one_without_a_name_is_refused()
    {
        byte[] route = Encoding.UTF8.GetBytes("""{"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute","metadata":{"name":"r","namespace":"shop"},"spec":{}}""");
        KubeObject obj = KubeJson.ToKubeObject(KubeJson.ParseObject(route), KubeResource.HttpRoute);
        Assert.Equal("gateway.networking.k8s.io", obj.Group);
        Assert.Equal("HTTPRoute", obj.Kind);

        byte[] nameless = Encoding.UTF8.GetBytes("""{"metadata":{"namespace":"shop"}}""");
        Assert.Throws<FormatException>(() => KubeJson.ToKubeObject(KubeJson.ParseObject(nameless), KubeResource.Pod));
        Assert.ThrowsAny<System.Text.Json.JsonException>(() => KubeJson.ParseObject("[1]"u8));
        Assert.ThrowsAny<System.Text.Json.JsonException>(() => KubeJson.ParseObject("{\"a\":1} {"u8));
    }

    [Fact]
    public void Managed_fields_are_dropped_and_nothing_else()
    {
        byte[] json = Encoding.UTF8.GetBytes("""
            {"metadata":{"name":"a","managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{}}}],"labels":{"managedFields":"kept"}},
             "spec":{"template":{"metadata":{"name":"t"}},"managedFields":"kept too"}}
            """);

        YamlMappingNode node = KubeJson.ParseObject(json);

        var metadata = (YamlMappingNode)node["metadata"];
        Assert.False(metadata.Children.ContainsKey(new YamlScalarNode("managedFields")));
        Assert.Equal("kept", ((YamlScalarNode)((YamlMappingNode)metadata["labels"])["managedFields"]).Value);
        Assert.Equal("kept too", ((YamlScalarNode)((YamlMappingNode)node["spec"])["managedFields"]).Value);
        Assert.Equal(["name", "labels"], metadata.Children.Keys.Select(k => ((YamlScalarNode)k).Value));
    }

    [Fact]
    public void Long_and_escaped_keys_come_through_unchanged()
    {
        string longKey = new('k', 100);
        byte[] json = Encoding.UTF8.GetBytes("""{"metadata":{"name":"a","labels":{""" + $"\"{longKey}\"" + """:"1","caf\u00e9":"2","a\"b":"3"}}}""");

        KubeObject obj = KubeJson.ToKubeObject(KubeJson.ParseObject(json), KubeResource.Pod);

        Assert.Equal("1", obj.Labels[longKey]);
        Assert.Equal("2", obj.Labels["café"]);
        Assert.Equal("3", obj.Labels["a\"b"]);
    }

    private static void AssertSameTree(YamlNode expected, YamlNode actual, string path)
    {
        Assert.Equal(expected.NodeType, actual.NodeType);
        switch (expected)
        {
            case YamlScalarNode e:
                var a = (YamlScalarNode)actual;
                Assert.True(e.Value == a.Value, $"{path}: '{e.Value}' != '{a.Value}'");
                // Double-quoted (a JSON string) against plain (number, bool, null): the translator's way to tell "80" from 80.
                Assert.True((e.Style == ScalarStyle.DoubleQuoted) == (a.Style == ScalarStyle.DoubleQuoted), $"{path}: style {e.Style} != {a.Style}");
                break;
            case YamlSequenceNode e:
                var seq = (YamlSequenceNode)actual;
                Assert.Equal(e.Children.Count, seq.Children.Count);
                for (int i = 0; i < e.Children.Count; i++)
                {
                    AssertSameTree(e.Children[i], seq.Children[i], $"{path}[{i}]");
                }
                break;
            case YamlMappingNode e:
                var map = (YamlMappingNode)actual;
                Assert.Equal(e.Children.Select(c => ((YamlScalarNode)c.Key).Value), map.Children.Select(c => ((YamlScalarNode)c.Key).Value));
                foreach ((YamlNode key, YamlNode value) in e.Children)
                {
                    AssertSameTree(value, map.Children[key], $"{path}.{((YamlScalarNode)key).Value}");
                }
                break;
        }
    }
}
