namespace Ambient.Mesh.Http2.Hpack;

/// <summary>
/// The HPACK dynamic table (RFC 7541 section 2.3.2): a FIFO bounded by the sum of entry sizes (name + value + 32).
/// Kept as a ring so insertion and eviction never shift entries.
/// </summary>
internal sealed class HpackDynamicTable
{
    public const int EntryOverhead = 32;

    private HeaderField[] _ring = new HeaderField[16];
    private int _head; // slot of the newest entry
    private int _count;

    public HpackDynamicTable(int maxSize) => MaxSize = maxSize;

    public int Count => _count;

    /// <summary>Sum of entry sizes currently held.</summary>
    public int Size { get; private set; }

    public int MaxSize { get; private set; }

    public static int EntrySize(HeaderField field) => field.Name.Length + field.Value.Length + EntryOverhead;

    /// <summary>Entry by dynamic index: 0 is the most recently inserted.</summary>
    public HeaderField this[int index]
    {
        get
        {
            if ((uint)index >= (uint)_count)
            {
                throw new HpackException($"Dynamic table index {index} out of range.");
            }

            int slot = _head - index;
            if (slot < 0)
            {
                slot += _ring.Length;
            }

            return _ring[slot];
        }
    }

    public void SetMaxSize(int maxSize)
    {
        MaxSize = maxSize;
        EvictTo(maxSize);
    }

    public void Insert(HeaderField field)
    {
        int size = EntrySize(field);
        if (size > MaxSize)
        {
            // An entry larger than the table empties it and is not added (RFC 7541 section 4.4); not an error.
            EvictTo(0);
            return;
        }

        EvictTo(MaxSize - size);
        if (_count == _ring.Length)
        {
            Grow();
        }

        _head = (_head + 1) % _ring.Length;
        _ring[_head] = field;
        _count++;
        Size += size;
    }

    private void EvictTo(int targetSize)
    {
        while (Size > targetSize && _count > 0)
        {
            int oldest = _head - (_count - 1);
            if (oldest < 0)
            {
                oldest += _ring.Length;
            }

            Size -= EntrySize(_ring[oldest]);
            _ring[oldest] = default;
            _count--;
        }
    }

    private void Grow()
    {
        var bigger = new HeaderField[_ring.Length * 2];
        for (int i = 0; i < _count; i++)
        {
            // Oldest first, so the newest lands at _count - 1.
            bigger[i] = this[_count - 1 - i];
        }

        _ring = bigger;
        _head = _count - 1;
    }
}
