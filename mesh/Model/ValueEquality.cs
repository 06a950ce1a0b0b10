using System.Collections.Immutable;

namespace Ambient.Mesh.Model;

/// <summary>
/// Structural equality for the immutable collections inside model records. A record's generated equality compares
/// an <see cref="ImmutableArray{T}"/> or an <see cref="ImmutableDictionary{TKey, TValue}"/> by reference, so two
/// translations of the same unchanged object would look different; the store compares by value to keep a source's
/// republished state from turning into a change of every entry.
/// </summary>
internal static class ValueEquality
{
    public static bool Same<T>(ImmutableArray<T> a, ImmutableArray<T> b)
    {
        if (a.IsDefaultOrEmpty || b.IsDefaultOrEmpty)
        {
            return a.IsDefaultOrEmpty == b.IsDefaultOrEmpty;
        }
        return a.AsSpan().SequenceEqual(b.AsSpan());
    }

    public static bool Same<TKey, TValue>(ImmutableDictionary<TKey, TValue> a, ImmutableDictionary<TKey, TValue> b)
        where TKey : notnull
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }
        if (a.Count != b.Count)
        {
            return false;
        }
        var values = EqualityComparer<TValue>.Default;
        foreach (KeyValuePair<TKey, TValue> kv in a)
        {
            if (!b.TryGetValue(kv.Key, out TValue? other) || !values.Equals(kv.Value, other))
            {
                return false;
            }
        }
        return true;
    }

    public static bool Same<TKey, TInner>(
        ImmutableDictionary<TKey, ImmutableDictionary<TInner, TInner>> a,
        ImmutableDictionary<TKey, ImmutableDictionary<TInner, TInner>> b)
        where TKey : notnull
        where TInner : notnull
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }
        if (a.Count != b.Count)
        {
            return false;
        }
        foreach (KeyValuePair<TKey, ImmutableDictionary<TInner, TInner>> kv in a)
        {
            if (!b.TryGetValue(kv.Key, out var other) || !Same(kv.Value, other))
            {
                return false;
            }
        }
        return true;
    }
}
