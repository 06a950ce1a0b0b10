using System.Collections.Immutable;

namespace Ambient.Mesh.Kubernetes;

/// <summary>
/// Label selectors (<c>matchLabels</c>) of one kind of object, indexed so that finding the selectors that match a
/// set of labels costs a few lookups instead of one check per selector. Each selector is filed under its namespace
/// and one of its own pairs (key, value). A labelled object asks, for each key that selectors of its namespace are
/// filed under (usually one or two: "app", "k8s-app"), for the selectors filed under its own value of that key,
/// and checks the rest of each candidate. 10,000 pods against 1,000 services in one namespace is then ~10,000
/// lookups, not 10 million selector checks; a namespace without selectors costs one lookup.
/// </summary>
internal sealed class SelectorIndex<T>
{
    private sealed class NamespaceIndex
    {
        public readonly Dictionary<string, Dictionary<string, List<(ImmutableDictionary<string, string> Selector, T Item)>>> ByKey = new(StringComparer.Ordinal);
        public List<T>? MatchAll;
    }

    private readonly Dictionary<string, NamespaceIndex> _byNamespace = new(StringComparer.Ordinal);

    public int Count { get; private set; }

    /// <summary>
    /// Files a selector of an object in <paramref name="ns"/>. An empty selector matches nothing (a Service without a
    /// selector) unless <paramref name="emptyMatchesAll"/> (an Istio policy with <c>selector: {}</c>).
    /// </summary>
    public void Add(string ns, ImmutableDictionary<string, string> selector, T item, bool emptyMatchesAll = false)
    {
        if (selector.IsEmpty && !emptyMatchesAll)
        {
            return;
        }
        if (!_byNamespace.TryGetValue(ns, out NamespaceIndex? index))
        {
            _byNamespace[ns] = index = new NamespaceIndex();
        }
        Count++;
        if (selector.IsEmpty)
        {
            (index.MatchAll ??= []).Add(item);
            return;
        }
        // File under the key most selectors of the namespace already use, so objects try as few keys as possible.
        string? key = null;
        foreach (KeyValuePair<string, string> kv in selector)
        {
            if (index.ByKey.ContainsKey(kv.Key))
            {
                key = kv.Key;
                break;
            }
            key ??= kv.Key;
        }
        if (!index.ByKey.TryGetValue(key!, out var byValue))
        {
            index.ByKey[key!] = byValue = new Dictionary<string, List<(ImmutableDictionary<string, string>, T)>>(StringComparer.Ordinal);
        }
        string value = selector[key!];
        if (!byValue.TryGetValue(value, out var list))
        {
            byValue[value] = list = [];
        }
        list.Add((selector, item));
    }

    /// <summary>Adds to <paramref name="into"/> every item of <paramref name="ns"/> whose selector matches <paramref name="labels"/>.</summary>
    public void Select(string ns, ImmutableDictionary<string, string> labels, List<T> into)
    {
        if (Count == 0 || !_byNamespace.TryGetValue(ns, out NamespaceIndex? index))
        {
            return;
        }
        if (index.MatchAll is { } all)
        {
            into.AddRange(all);
        }
        if (labels.IsEmpty)
        {
            return;
        }
        foreach (KeyValuePair<string, Dictionary<string, List<(ImmutableDictionary<string, string> Selector, T Item)>>> byKey in index.ByKey)
        {
            if (!labels.TryGetValue(byKey.Key, out string? value) || !byKey.Value.TryGetValue(value, out var candidates))
            {
                continue;
            }
            foreach ((ImmutableDictionary<string, string> selector, T item) in candidates)
            {
                if (selector.Count == 1 || Matches(selector, labels))
                {
                    into.Add(item);
                }
            }
        }
    }

    /// <summary>Whether every pair of <paramref name="selector"/> is in <paramref name="labels"/>.</summary>
    public static bool Matches(ImmutableDictionary<string, string> selector, ImmutableDictionary<string, string> labels)
    {
        foreach (KeyValuePair<string, string> kv in selector)
        {
            if (!labels.TryGetValue(kv.Key, out string? v) || !string.Equals(v, kv.Value, StringComparison.Ordinal))
            {
                return false;
            }
        }
        return true;
    }
}
