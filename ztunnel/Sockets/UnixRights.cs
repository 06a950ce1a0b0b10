using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Ambient.Ztunnel.Sockets;

/// <summary>
/// One message with file descriptors attached (SCM_RIGHTS, unix(7)) over a connected AF_UNIX SOCK_SEQPACKET socket:
/// how an agent hands its listening sockets to its successor (issue 12). .NET has no API for ancillary data on unix
/// sockets, so this is sendmsg/recvmsg directly. SEQPACKET keeps message boundaries, so a message and its descriptors
/// always arrive together. The calls are synchronous and bounded by poll(2); callers run them off the I/O threads.
/// The struct layouts are those of 64-bit Linux (x86-64 and arm64 share them).
/// </summary>
internal static unsafe partial class UnixRights
{
    public const int MaxFds = 16;
    private const int SolSocket = 1;
    private const int ScmRights = 1;
    private const int SoPeerCred = 17;
    private const int MsgDontWait = 0x40;
    private const int MsgNoSignal = 0x4000;
    private const int MsgCtrunc = 0x8;
    private const int MsgTrunc = 0x20;
    private const int MsgCmsgCloexec = 0x40000000;
    private const short PollIn = 0x1;
    private const short PollOut = 0x4;
    private const int EAgain = 11;
    private const int EIntr = 4;
    private const int FSetFd = 2;
    private const int CmsgHeader = 16; // cmsg_len (size_t), cmsg_level, cmsg_type

    /// <summary>Sends <paramref name="payload"/> (not empty) with <paramref name="fds"/> attached.</summary>
    public static void Send(Socket socket, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds, TimeSpan timeout)
    {
        if (payload.IsEmpty || fds.Length > MaxFds)
        {
            throw new ArgumentException("a message needs a payload and at most 16 descriptors");
        }
        int controlLength = fds.IsEmpty ? 0 : CmsgHeader + Align(fds.Length * sizeof(int));
        byte* control = stackalloc byte[CmsgHeader + Align(MaxFds * sizeof(int))];
        if (!fds.IsEmpty)
        {
            *(ulong*)control = (ulong)(CmsgHeader + (fds.Length * sizeof(int)));
            *(int*)(control + 8) = SolSocket;
            *(int*)(control + 12) = ScmRights;
            fds.CopyTo(new Span<int>(control + CmsgHeader, fds.Length));
        }
        fixed (byte* data = payload)
        {
            var iov = new IoVec { Base = data, Length = (nuint)payload.Length };
            var msg = new MsgHdr { Iov = &iov, IovLength = 1, Control = fds.IsEmpty ? null : control, ControlLength = (nuint)controlLength };
            int fd = (int)socket.SafeHandle.DangerousGetHandle();
            var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            while (true)
            {
                nint n = sendmsg(fd, &msg, MsgDontWait | MsgNoSignal);
                if (n == payload.Length)
                {
                    return;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (n >= 0)
                {
                    throw new IOException($"sendmsg sent {n} of {payload.Length} bytes");
                }
                if (errno != EAgain && errno != EIntr)
                {
                    throw new IOException($"sendmsg failed: errno {errno}");
                }
                Wait(fd, PollOut, deadline);
            }
        }
    }

    /// <summary>
    /// Receives one message into <paramref name="buffer"/>; its descriptors come back close-on-exec, owned by the
    /// caller. Returns length 0 when the peer closed the connection.
    /// </summary>
    public static (int Length, int[] Fds) Receive(Socket socket, Span<byte> buffer, TimeSpan timeout)
    {
        byte* control = stackalloc byte[CmsgHeader + Align(MaxFds * sizeof(int))];
        int controlSize = CmsgHeader + Align(MaxFds * sizeof(int));
        fixed (byte* data = buffer)
        {
            var iov = new IoVec { Base = data, Length = (nuint)buffer.Length };
            var msg = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlSize };
            int fd = (int)socket.SafeHandle.DangerousGetHandle();
            var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            nint n;
            while (true)
            {
                n = recvmsg(fd, &msg, MsgDontWait | MsgCmsgCloexec);
                if (n >= 0)
                {
                    break;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno != EAgain && errno != EIntr)
                {
                    throw new IOException($"recvmsg failed: errno {errno}");
                }
                Wait(fd, PollIn, deadline);
            }
            var fds = new List<int>();
            if (msg.ControlLength >= CmsgHeader)
            {
                ulong len = *(ulong*)control;
                if (*(int*)(control + 8) == SolSocket && *(int*)(control + 12) == ScmRights && len >= CmsgHeader)
                {
                    int count = (int)((len - CmsgHeader) / sizeof(int));
                    for (int i = 0; i < count; i++)
                    {
                        fds.Add(((int*)(control + CmsgHeader))[i]);
                    }
                }
            }
            if ((msg.Flags & (MsgCtrunc | MsgTrunc)) != 0)
            {
                foreach (int f in fds)
                {
                    _ = close(f);
                }
                throw new IOException("handover message or its descriptors were truncated");
            }
            return ((int)n, [.. fds]);
        }
    }

    /// <summary>The user id of the process on the other end (SO_PEERCRED), for refusing anyone but the agent's own user.</summary>
    public static (int Pid, uint Uid) Peer(Socket socket)
    {
        Span<byte> cred = stackalloc byte[12]; // struct ucred: pid, uid, gid
        socket.GetRawSocketOption(SolSocket, SoPeerCred, cred);
        return (MemoryMarshal.Read<int>(cred), MemoryMarshal.Read<uint>(cred[4..]));
    }

    public static uint EffectiveUserId => geteuid();

    /// <summary>
    /// Clears close-on-exec. .NET's Socket.Dispose on Linux shuts a socket down (waking any blocked call) unless the
    /// descriptor lacks FD_CLOEXEC, its sign that the socket is shared with another process; a listening socket handed
    /// to a successor must only be closed, never shut down under it.
    /// </summary>
    public static void MarkShared(Socket socket)
    {
        if (fcntl((int)socket.SafeHandle.DangerousGetHandle(), FSetFd, 0) != 0)
        {
            throw new IOException($"fcntl(F_SETFD) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public static void Close(int fd) => _ = close(fd);

    private static void Wait(int fd, short events, long deadline)
    {
        long left = deadline - Environment.TickCount64;
        if (left <= 0)
        {
            throw new TimeoutException("the other agent did not answer in time");
        }
        var p = new PollFd { Fd = fd, Events = events };
        int r = poll(&p, 1, (int)Math.Min(left, int.MaxValue));
        if (r < 0 && Marshal.GetLastPInvokeError() != EIntr)
        {
            throw new IOException($"poll failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private static int Align(int n) => (n + 7) & ~7;

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvmsg(int fd, MsgHdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint count, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
