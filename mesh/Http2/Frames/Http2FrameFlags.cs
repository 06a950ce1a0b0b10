namespace Ambient.Mesh.Http2.Frames;

/// <summary>Frame flags; the meaning of a bit depends on the frame type, so several names share a value.</summary>
[Flags]
#pragma warning disable CA1069 // ACK (SETTINGS, PING) and END_STREAM (DATA, HEADERS) are the same bit by design
internal enum Http2FrameFlags : byte
{
    None = 0x0,
    EndStream = 0x1,
    Ack = 0x1,
    EndHeaders = 0x4,
    Padded = 0x8,
    Priority = 0x20,
}
#pragma warning restore CA1069
