namespace Ambient.Mesh.Http2;

/// <summary>
/// Bounds the work a peer can make us do with frames that carry no payload for the application: the "rapid reset"
/// (CVE-2023-44487), PING/SETTINGS floods and empty-frame floods (CVE-2019-9512..9518). Counts per one-second window;
/// a peer over budget gets GOAWAY ENHANCE_YOUR_CALM. Read-loop only, so no locking.
/// </summary>
internal sealed class Http2FloodGuard
{
    // Generous for a pool that opens/cancels up to 100 tunnels per connection, far below what an attack needs.
    internal const int MaxResetsPerWindow = 200;
    internal const int MaxControlPerWindow = 200;
    internal const int MaxEmptyPerWindow = 200;
    internal const int MaxPriorityPerWindow = 1000;
    private const long WindowMs = 1000;

    private long _windowStart = Environment.TickCount64;
    private int _resets;
    private int _control;
    private int _empty;
    private int _priority;

    /// <summary>RST_STREAM received, or a stream error we had to answer with RST_STREAM.</summary>
    public bool OnReset() => ++Current()._resets <= MaxResetsPerWindow;

    /// <summary>PING or SETTINGS (each costs us a reply).</summary>
    public bool OnControl() => ++Current()._control <= MaxControlPerWindow;

    /// <summary>Zero-length DATA/CONTINUATION without an end flag, or frames of unknown type.</summary>
    public bool OnEmpty() => ++Current()._empty <= MaxEmptyPerWindow;

    public bool OnPriority() => ++Current()._priority <= MaxPriorityPerWindow;

    private Http2FloodGuard Current()
    {
        long now = Environment.TickCount64;
        if (now - _windowStart >= WindowMs)
        {
            _windowStart = now;
            _resets = _control = _empty = _priority = 0;
        }

        return this;
    }
}
