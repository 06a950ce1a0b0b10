using System.IO.Pipelines;

namespace Ambient.Mesh.Http2;

/// <summary>
/// The reader scheduler of an HTTP/2 connection's output pipe. A flush that carries a small amount of data runs the
/// waiting write loop on the flushing thread; a large one hands it to the thread pool. Each stream's input
/// (Http2StreamInput) makes the same choice with the same <see cref="InlineLimit"/>.
/// </summary>
/// <remarks>
/// Interactive traffic (a request of a few KiB every now and then) is dominated by thread wake-ups: with a pool hop
/// per pipe, one request crossed four threads per agent. Running the reader inline makes it one thread from the
/// socket that received the bytes to the socket that sends them. Bulk traffic keeps the hand-off, so that reading
/// the next chunk overlaps with encrypting and sending the previous one. The writer says which it wants with
/// <see cref="Flush"/>; a flush that does not go through it (no flag set) hands off.
/// </remarks>
internal sealed class HandOffScheduler : PipeScheduler
{
    /// <summary>Flushes of at most this many bytes run the reader inline.</summary>
    internal const int InlineLimit = 16 * 1024;

    public static readonly HandOffScheduler Instance = new();

    [ThreadStatic]
    private static bool t_inline;

    private HandOffScheduler()
    {
    }

    public override void Schedule(Action<object?> action, object? state)
    {
        if (t_inline)
        {
            // The reader's continuation may flush another pipe: that flush decides for itself.
            t_inline = false;
            try
            {
                action(state);
            }
            finally
            {
                t_inline = true;
            }
        }
        else
        {
            System.Threading.ThreadPool.UnsafeQueueUserWorkItem(action, state, preferLocal: false);
        }
    }

    /// <summary>
    /// Flushes <paramref name="writer"/> (whose pipe never pauses its writer) and, if the reader was waiting, runs it
    /// here when <paramref name="bytes"/> is at most <see cref="InlineLimit"/>.
    /// </summary>
    public static void Flush(PipeWriter writer, long bytes)
    {
        bool previous = t_inline;
        t_inline = bytes <= InlineLimit;
        try
        {
            ValueTask<FlushResult> flush = writer.FlushAsync();
            if (!flush.IsCompletedSuccessfully)
            {
                _ = flush.AsTask();
            }
        }
        finally
        {
            t_inline = previous;
        }
    }
}
