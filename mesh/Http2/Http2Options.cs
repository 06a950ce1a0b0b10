namespace Ambient.Mesh.Http2;

/// <summary>Tunables; defaults are Istio ztunnel's HBONE settings.</summary>
public sealed record Http2Options
{
    public int InitialStreamWindowSize { get; init; } = 4 * 1024 * 1024;
    public int InitialConnectionWindowSize { get; init; } = 16 * 1024 * 1024;
    /// <summary>Largest frame payload we accept (advertised as SETTINGS_MAX_FRAME_SIZE).</summary>
    public int MaxFrameSize { get; init; } = 1024 * 1024;
    /// <summary>Streams the peer may open on a server connection; a client also never exceeds this many.</summary>
    public int MaxConcurrentStreams { get; init; } = 100;
    public int MaxHeaderListSize { get; init; } = 64 * 1024;
    public int HeaderTableSize { get; init; } = 4096;
    /// <summary>How long the preface + first SETTINGS may take before the connection is dropped.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
