using System.Collections.Immutable;

namespace Ambient.Mesh.Kubernetes;

/// <summary>
/// Label selectors (<c>matchLabels</c>) of one kind of object, indexed so that finding the selectors that match a
/// set of labels costs one lookup per label instead of one check per selector. Each selector is filed under one
/// of its own pairs (namespace, key, value); a labelled object finds its candidates through its own pairs and
/// then checks the rest of each candidate's selector. 10,000 pods against 1,000 services in one namespace is
/// then ~50,000 lookups, not 10 million selector checks.
/// </summary>
internal sealed class SelectorIndex<T>
{
    private readonly Dictionary<(string Namespace, string Key, string Value), List<(ImmutableDictionary<string, string> Selector, T Item)>> _byPair = [];
    private readonly Dictionary<string, List<T>> _matchAll = new(StringComparer.Ordinal);

    public int Count { get; private set; }

    /// <summary>
    /// Files a selector of an object in <paramref name="ns"/>. An empty selector matches nothing (a Service without a
    /// selector) unless <paramref name="emptyMatchesAll"/> (an Istio policy with <c>selector: {}</c>).
    /// </summary>
    public void Add(string ns, ImmutableDictionary<string, string> selector, T item, bool emptyMatchesAll = false)
    {
        if (selector.IsEmpty)
        {
            if (emptyMatchesAll)
            {
                if (!_matchAll.TryGetValue(ns, out List<T>? all))
                {
                    _matchAll[ns] = all = [];
                }
                all.Add(item);
                Count++;
            }
            return;
        }
        KeyValuePair<string, string> first = default;
        foreach (KeyValuePair<string, string> kv in selector)
        {
            first = kv;
            break;
        }
        var key = (ns, first.Key, first.Value);
        if (!_byPair.TryGetValue(key, out var list))
        {
            _byPair[key] = list = [];
        }
        list.Add((selector, item));
        Count++;
    }

    /// <summary>Adds to <paramref name="into"/> every item of <paramref name="ns"/> whose selector matches <paramref name="labels"/>.</summary>
    public void Select(string ns, ImmutableDictionary<string, string> labels, List<T> into)
    {
        if (Count == 0)
        {
            return;
        }
        if (_matchAll.TryGetValue(ns, out List<T>? all))
        {
            into.AddRange(all);
        }
        if (_byPair.Count == 0)
        {
            return;
        }
        foreach (KeyValuePair<string, string> label in labels)
        {
            if (!_byPair.TryGetValue((ns, label.Key, label.Value), out var candidates))
            {
                continue;
            }
            foreach ((ImmutableDictionary<string, string> selector, T item) in candidates)
            {
                if (Matches(selector, labels))
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
