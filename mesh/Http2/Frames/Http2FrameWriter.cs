using System.Buffers;
using System.Buffers.Binary;

namespace Ambient.Mesh.Http2.Frames;

/// <summary>
/// Serialises frames into a buffer writer (the connection's output pipe). Headers go straight into the pipe's pooled
/// memory, so writing a frame allocates nothing. Callers serialise access.
/// </summary>
internal static class Http2FrameWriter
{
    public static void WriteHeader(IBufferWriter<byte> output, int length, Http2FrameType type, Http2FrameFlags flags, int streamId)
    {
        Span<byte> span = output.GetSpan(Http2FrameHeader.Size);
        Http2FrameHeader.Write(span, length, type, flags, streamId);
        output.Advance(Http2FrameHeader.Size);
    }

    public static void WriteData(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> payload, bool endStream)
    {
        WriteHeader(output, payload.Length, Http2FrameType.Data, endStream ? Http2FrameFlags.EndStream : Http2FrameFlags.None, streamId);
        output.Write(payload);
    }

    /// <summary>HEADERS followed by as many CONTINUATION frames as <paramref name="maxFrameSize"/> requires.</summary>
    public static void WriteHeaders(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> block, bool endStream, int maxFrameSize)
    {
        int first = Math.Min(block.Length, maxFrameSize);
        var flags = endStream ? Http2FrameFlags.EndStream : Http2FrameFlags.None;
        if (first == block.Length)
        {
            flags |= Http2FrameFlags.EndHeaders;
        }

        WriteHeader(output, first, Http2FrameType.Headers, flags, streamId);
        output.Write(block[..first]);
        block = block[first..];
        while (!block.IsEmpty)
        {
            int n = Math.Min(block.Length, maxFrameSize);
            WriteHeader(output, n, Http2FrameType.Continuation, n == block.Length ? Http2FrameFlags.EndHeaders : Http2FrameFlags.None, streamId);
            output.Write(block[..n]);
            block = block[n..];
        }
    }

    public static void WriteSettings(IBufferWriter<byte> output, ReadOnlySpan<(Http2SettingsParameter Id, uint Value)> settings)
    {
        WriteHeader(output, settings.Length * 6, Http2FrameType.Settings, Http2FrameFlags.None, 0);
        Span<byte> span = output.GetSpan(settings.Length * 6);
        for (int i = 0; i < settings.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(span[(i * 6)..], (ushort)settings[i].Id);
            BinaryPrimitives.WriteUInt32BigEndian(span[((i * 6) + 2)..], settings[i].Value);
        }

        output.Advance(settings.Length * 6);
    }

    public static void WriteSettingsAck(IBufferWriter<byte> output) =>
        WriteHeader(output, 0, Http2FrameType.Settings, Http2FrameFlags.Ack, 0);

    public static void WritePing(IBufferWriter<byte> output, ReadOnlySpan<byte> opaque, bool ack)
    {
        WriteHeader(output, 8, Http2FrameType.Ping, ack ? Http2FrameFlags.Ack : Http2FrameFlags.None, 0);
        output.Write(opaque);
    }

    public static void WriteWindowUpdate(IBufferWriter<byte> output, int streamId, int increment)
    {
        WriteHeader(output, 4, Http2FrameType.WindowUpdate, Http2FrameFlags.None, streamId);
        BinaryPrimitives.WriteUInt32BigEndian(output.GetSpan(4), (uint)increment);
        output.Advance(4);
    }

    public static void WriteRstStream(IBufferWriter<byte> output, int streamId, Http2ErrorCode code)
    {
        WriteHeader(output, 4, Http2FrameType.RstStream, Http2FrameFlags.None, streamId);
        BinaryPrimitives.WriteUInt32BigEndian(output.GetSpan(4), (uint)code);
        output.Advance(4);
    }

    public static void WriteGoAway(IBufferWriter<byte> output, int lastStreamId, Http2ErrorCode code, ReadOnlySpan<byte> debugData)
    {
        WriteHeader(output, 8 + debugData.Length, Http2FrameType.GoAway, Http2FrameFlags.None, 0);
        Span<byte> span = output.GetSpan(8);
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)lastStreamId);
        BinaryPrimitives.WriteUInt32BigEndian(span[4..], (uint)code);
        output.Advance(8);
        output.Write(debugData);
    }
}
