using System.Buffers;
using System.Buffers.Binary;

namespace Ambient.Mesh.Http2.Frames;

/// <summary>The fixed 9-byte frame header (RFC 9113 section 4.1).</summary>
internal readonly record struct Http2FrameHeader(int Length, Http2FrameType Type, Http2FrameFlags Flags, int StreamId)
{
    public const int Size = 9;

    /// <summary>The default and smallest allowed SETTINGS_MAX_FRAME_SIZE.</summary>
    public const int MinMaxFrameSize = 16384;

    /// <summary>The largest SETTINGS_MAX_FRAME_SIZE a peer may advertise (2^24 - 1).</summary>
    public const int MaxMaxFrameSize = (1 << 24) - 1;

    public bool HasFlag(Http2FrameFlags flag) => (Flags & flag) != 0;

    public static Http2FrameHeader Read(ReadOnlySpan<byte> source)
    {
        int length = (source[0] << 16) | (source[1] << 8) | source[2];
        // The reserved bit is ignored on receipt (section 4.1).
        int streamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(source[5..]) & 0x7FFFFFFF);
        return new Http2FrameHeader(length, (Http2FrameType)source[3], (Http2FrameFlags)source[4], streamId);
    }

    /// <summary>Reads a header from the start of a possibly multi-segment buffer.</summary>
    public static Http2FrameHeader Read(in ReadOnlySequence<byte> source)
    {
        if (source.FirstSpan.Length >= Size)
        {
            return Read(source.FirstSpan);
        }

        Span<byte> tmp = stackalloc byte[Size];
        source.Slice(0, Size).CopyTo(tmp);
        return Read(tmp);
    }

    public static void Write(Span<byte> destination, int length, Http2FrameType type, Http2FrameFlags flags, int streamId)
    {
        destination[0] = (byte)(length >> 16);
        destination[1] = (byte)(length >> 8);
        destination[2] = (byte)length;
        destination[3] = (byte)type;
        destination[4] = (byte)flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], (uint)streamId);
    }
}
