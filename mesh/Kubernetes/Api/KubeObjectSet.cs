using System.Collections.Immutable;

namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>
/// Every object the watcher holds at one moment, immutable: hand it out, keep it, diff two of them.
/// <see cref="Generation"/> grows with every change, so a consumer can tell whether it has seen a set.
/// </summary>
public sealed record KubeObjectSet(ImmutableDictionary<KubeObjectKey, KubeObject> Objects, long Generation)
{
    public static readonly KubeObjectSet Empty = new(ImmutableDictionary<KubeObjectKey, KubeObject>.Empty, 0);
}

/// <summary>
/// The objects of all watched kinds, changed by the per-kind loops and read lock-free as a
/// <see cref="KubeObjectSet"/>. Each change swaps the whole immutable dictionary (O(log n) for one object).
/// </summary>
internal sealed class KubeObjectStore
{
    private readonly Lock _gate = new();
    private readonly Action _changed;
    private KubeObjectSet _current = KubeObjectSet.Empty;

    public KubeObjectStore(Action changed) => _changed = changed;

    public KubeObjectSet Current => Volatile.Read(ref _current);

    /// <summary>Adds or replaces one object; a no-op (and no notification) when the same version is already held.</summary>
    public void Upsert(KubeObject obj)
    {
        lock (_gate)
        {
            if (_current.Objects.TryGetValue(obj.Key, out KubeObject? held) && SameVersion(held, obj))
            {
                return;
            }
            Publish(_current.Objects.SetItem(obj.Key, obj));
        }
        _changed();
    }

    public void Remove(KubeObjectKey key)
    {
        lock (_gate)
        {
            if (!_current.Objects.ContainsKey(key))
            {
                return;
            }
            Publish(_current.Objects.Remove(key));
        }
        _changed();
    }

    /// <summary>
    /// Makes <paramref name="objects"/> the whole content of one kind, as a list returned it: what the list lacks
    /// is removed (deleted while the watch was down), objects whose uid and resourceVersion did not change keep
    /// their instance. Returns how many were added or changed, and how many removed.
    /// </summary>
    public (int Upserted, int Removed) Replace(string group, string kind, IReadOnlyCollection<KubeObject> objects)
    {
        int upserted = 0;
        int removed = 0;
        lock (_gate)
        {
            ImmutableDictionary<KubeObjectKey, KubeObject>.Builder builder = _current.Objects.ToBuilder();
            var listed = new HashSet<KubeObjectKey>(objects.Count);
            foreach (KubeObject obj in objects)
            {
                listed.Add(obj.Key);
                if (!builder.TryGetValue(obj.Key, out KubeObject? held) || !SameVersion(held, obj))
                {
                    builder[obj.Key] = obj;
                    upserted++;
                }
            }
            foreach (KubeObjectKey key in _current.Objects.Keys)
            {
                if (key.Group == group && key.Kind == kind && !listed.Contains(key))
                {
                    builder.Remove(key);
                    removed++;
                }
            }
            if (upserted + removed > 0)
            {
                Publish(builder.ToImmutable());
            }
        }
        if (upserted + removed > 0)
        {
            _changed();
        }
        return (upserted, removed);
    }

    /// <summary>Objects of one kind held now.</summary>
    public int Count(string group, string kind)
    {
        int n = 0;
        foreach (KubeObjectKey key in Current.Objects.Keys)
        {
            if (key.Group == group && key.Kind == kind)
            {
                n++;
            }
        }
        return n;
    }

    private void Publish(ImmutableDictionary<KubeObjectKey, KubeObject> objects) =>
        Volatile.Write(ref _current, new KubeObjectSet(objects, _current.Generation + 1));

    private static bool SameVersion(KubeObject a, KubeObject b) =>
        a.ResourceVersion.Length > 0 && a.ResourceVersion == b.ResourceVersion && a.Uid == b.Uid;
}
