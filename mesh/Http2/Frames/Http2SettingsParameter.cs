namespace Ambient.Mesh.Http2.Frames;

/// <summary>RFC 9113 section 6.5.2 identifiers, plus RFC 8441's extended CONNECT.</summary>
internal enum Http2SettingsParameter : ushort
{
    HeaderTableSize = 0x1,
    EnablePush = 0x2,
    MaxConcurrentStreams = 0x3,
    InitialWindowSize = 0x4,
    MaxFrameSize = 0x5,
    MaxHeaderListSize = 0x6,
    EnableConnectProtocol = 0x8,
}
