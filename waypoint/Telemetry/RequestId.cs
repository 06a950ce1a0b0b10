using System.Security.Cryptography;

namespace Ambient.Waypoint.Telemetry;

/// <summary>
/// Istio's <c>x-request-id</c>: a random (version 4) UUID in its usual text form, generated at the first proxy.
/// </summary>
/// <remarks>
/// <see cref="Guid.NewGuid"/> asks the kernel for 16 bytes on every call (a <c>read</c> of /dev/urandom on Linux): one
/// of the waypoint's ~6.7 system calls per request (perf/results/node-bench-l7-profile.md, session 7). Here each
/// thread draws the same kind of cryptographically secure bytes 4 KiB at a time, one system call per 256 ids.
/// </remarks>
internal static class RequestId
{
    private const int BatchBytes = 4096;

    [ThreadStatic]
    private static byte[]? t_random;

    [ThreadStatic]
    private static int t_used;

    public static string Next()
    {
        byte[]? random = t_random;
        int used = t_used;
        if (random is null || used == BatchBytes)
        {
            random ??= t_random = new byte[BatchBytes];
            RandomNumberGenerator.Fill(random);
            used = 0;
        }
        t_used = used + 16;
        Span<byte> bytes = stackalloc byte[16];
        random.AsSpan(used, 16).CopyTo(bytes);
        // RFC 9562 section 5.4: version 4 in the high nibble of time_hi_and_version, variant 10 in clock_seq_hi. In the
        // little-endian layout Guid reads from bytes, those are bytes 7 and 8.
        bytes[7] = (byte)((bytes[7] & 0x0F) | 0x40);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes).ToString();
    }
}
