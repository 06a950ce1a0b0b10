using Ambient.Mesh.State;

namespace Ambient.Mesh.Sources;

/// <summary>
/// One kind's entries from every source, merged by key: the candidates per key and which one wins (highest
/// precedence, then the earliest source). Turns a source's publication into the changes of the winners, which is
/// all the snapshot needs. Not thread-safe: the store calls it under its lock.
/// </summary>
internal sealed class KindTable<T>(string kind, Func<T, string> keyOf) where T : class
{
    private readonly Dictionary<string, List<(MeshSource Source, T Value)>> _candidates = new(StringComparer.Ordinal);
    private readonly Dictionary<MeshSource, Dictionary<string, T>> _bySource = [];
    private readonly Dictionary<string, string> _refused = new(StringComparer.Ordinal);

    public string Kind { get; } = kind;

    public int RefusedCount => _refused.Count;

    /// <summary>
    /// Keys that a source started to publish while another source already had them, since the store last drained
    /// the list (it logs each once): (key, the winner, the loser).
    /// </summary>
    public List<(string Key, MeshSource Winner, MeshSource Loser)> NewConflicts { get; } = [];

    public int CountOf(MeshSource source) => _bySource.TryGetValue(source, out var own) ? own.Count : 0;

    /// <summary>Entries of this source that another source's entry overrides.</summary>
    public int ShadowedOf(MeshSource source)
    {
        if (!_bySource.TryGetValue(source, out var own))
        {
            return 0;
        }
        int n = 0;
        foreach (string key in own.Keys)
        {
            if (_candidates.TryGetValue(key, out var list) && !ReferenceEquals(Winner(list).Source, source))
            {
                n++;
            }
        }
        return n;
    }

    /// <summary>This source's entries another source overrides, each naming the winner (for /config_dump).</summary>
    public IEnumerable<string> ConflictsOf(MeshSource source)
    {
        if (!_bySource.TryGetValue(source, out var own))
        {
            yield break;
        }
        foreach (string key in own.Keys)
        {
            if (_candidates.TryGetValue(key, out var list) && Winner(list).Source is var winner && !ReferenceEquals(winner, source))
            {
                yield return $"{Kind} {key}: shadowed by {winner.Name} (precedence {winner.Precedence})";
            }
        }
    }

    public IEnumerable<string> RefusedOf(MeshSource source)
    {
        foreach (KeyValuePair<string, string> kv in _refused)
        {
            if (_candidates.TryGetValue(kv.Key, out var list) && ReferenceEquals(Winner(list).Source, source))
            {
                yield return $"{Kind} {kv.Key}: {kv.Value}";
            }
        }
    }

    public IEnumerable<(string Key, T Value, string Origin)> RefusedWinners()
    {
        foreach (string key in _refused.Keys.ToList())
        {
            if (_candidates.TryGetValue(key, out var list))
            {
                var w = Winner(list);
                yield return (key, w.Value, w.Source.Name);
            }
        }
    }

    public void Refuse(string key, string reason) => _refused[key] = reason;

    public void Admit(string key) => _refused.Remove(key);

    public T? WinnerExcluding(string key, MeshSource except)
    {
        if (!_candidates.TryGetValue(key, out var list))
        {
            return null;
        }
        (MeshSource Source, T Value)? best = null;
        foreach (var c in list)
        {
            if (!ReferenceEquals(c.Source, except) && (best is null || Beats(c.Source, best.Value.Source)))
            {
                best = c;
            }
        }
        return best?.Value;
    }

    /// <summary>State of the world: whatever the source had that is not in <paramref name="items"/> is removed.</summary>
    public void Replace(MeshSource source, IEnumerable<T> items, List<Change<T>> changes)
    {
        var next = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (T item in items)
        {
            next[keyOf(item)] = item; // a duplicate key within one source: the last one wins
        }
        if (_bySource.TryGetValue(source, out var before))
        {
            foreach (string key in before.Keys)
            {
                if (!next.ContainsKey(key))
                {
                    Set(source, key, null, changes);
                }
            }
        }
        foreach (KeyValuePair<string, T> kv in next)
        {
            Set(source, kv.Key, kv.Value, changes);
        }
    }

    public void Upsert(MeshSource source, IEnumerable<T> items, List<Change<T>> changes)
    {
        foreach (T item in items)
        {
            Set(source, keyOf(item), item, changes);
        }
    }

    public void Remove(MeshSource source, IEnumerable<string> keys, List<Change<T>> changes)
    {
        foreach (string key in keys)
        {
            Set(source, key, null, changes);
        }
    }

    /// <summary>Sets (or with null removes) one source's entry and records the winner's change, if any.</summary>
    private void Set(MeshSource source, string key, T? value, List<Change<T>> changes)
    {
        if (!_bySource.TryGetValue(source, out var own))
        {
            own = new Dictionary<string, T>(StringComparer.Ordinal);
            _bySource[source] = own;
        }
        if (own.TryGetValue(key, out T? current) && value is not null && (ReferenceEquals(current, value) || current.Equals(value)))
        {
            return; // unchanged: the common case when a source republishes its whole state
        }
        if (current is null && value is null)
        {
            return;
        }
        _candidates.TryGetValue(key, out var list);
        (MeshSource Source, T Value)? oldWinner = list is { Count: > 0 } ? Winner(list) : null;

        if (value is null)
        {
            own.Remove(key);
            list!.RemoveAll(c => ReferenceEquals(c.Source, source));
            if (list.Count == 0)
            {
                _candidates.Remove(key);
                _refused.Remove(key);
            }
        }
        else
        {
            own[key] = value;
            if (list is null)
            {
                list = [];
                _candidates[key] = list;
            }
            int i = list.FindIndex(c => ReferenceEquals(c.Source, source));
            if (i >= 0)
            {
                list[i] = (source, value);
            }
            else
            {
                list.Add((source, value));
                if (list.Count > 1)
                {
                    var winner = Winner(list);
                    MeshSource loser = ReferenceEquals(winner.Source, source) ? (oldWinner?.Source ?? source) : source;
                    NewConflicts.Add((key, winner.Source, loser));
                }
            }
        }

        (MeshSource Source, T Value)? newWinner = list is { Count: > 0 } ? Winner(list) : null;
        if (oldWinner?.Value != newWinner?.Value)
        {
            changes.Add(new Change<T>(key, oldWinner?.Value, newWinner?.Value, newWinner?.Source.Name));
        }
    }

    private static (MeshSource Source, T Value) Winner(List<(MeshSource Source, T Value)> list)
    {
        var best = list[0];
        for (int i = 1; i < list.Count; i++)
        {
            if (Beats(list[i].Source, best.Source))
            {
                best = list[i];
            }
        }
        return best;
    }

    private static bool Beats(MeshSource a, MeshSource b) =>
        a.Precedence > b.Precedence || (a.Precedence == b.Precedence && a.Order < b.Order);
}
