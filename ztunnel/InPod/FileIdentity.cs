using System.Runtime.InteropServices;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// Which file a path names right now: device and inode, from <c>statx(2)</c> without following a symlink. The CNI
/// socket is unlinked at shutdown only if its path still names the socket this agent created: a newer agent may have
/// replaced it, and deleting that one would leave pods added afterwards failing closed although an agent runs
/// (issue 13). .NET exposes no inode, and statx's buffer layout, unlike stat's, is the same on every architecture.
/// </summary>
internal readonly partial record struct FileIdentity(ulong Device, ulong Inode)
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxIno = 0x100;
    private const int StatxSize = 256;

    /// <summary>The identity of <paramref name="path"/>, or null when it does not exist (or cannot be examined).</summary>
    public static FileIdentity? Of(string path)
    {
        Span<byte> buf = stackalloc byte[StatxSize];
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxIno, ref MemoryMarshal.GetReference(buf)) != 0)
        {
            return null;
        }
        // struct statx: stx_ino at offset 32; stx_dev_major and stx_dev_minor at 136 and 140 (linux/stat.h).
        ulong inode = MemoryMarshal.Read<ulong>(buf[32..]);
        ulong device = ((ulong)MemoryMarshal.Read<uint>(buf[136..]) << 32) | MemoryMarshal.Read<uint>(buf[140..]);
        return new FileIdentity(device, inode);
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, ref byte buffer);
}
