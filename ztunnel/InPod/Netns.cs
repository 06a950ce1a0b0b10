using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// A handle on a pod's network namespace. A socket belongs to the namespace of the thread that created it, so
/// <see cref="CreateSocket"/> switches the calling thread into the pod's namespace just for the socket() call and
/// back again; the socket then works from any thread. Nothing else runs on the thread in between (the call is
/// synchronous), and a failure to switch back is fatal rather than leaving a pool thread inside a pod.
/// </summary>
internal sealed partial class Netns : IDisposable
{
    private const int CloneNewNet = 0x40000000;
    private static readonly Lazy<SafeFileHandle> s_host = new(() => File.OpenHandle("/proc/self/ns/net", FileMode.Open, FileAccess.Read));
    private readonly SafeFileHandle _handle;

    private Netns(string path, SafeFileHandle handle)
    {
        Path = path;
        _handle = handle;
    }

    public string Path { get; }

    /// <summary>
    /// The path under which this process sees a pod's namespace file. Runtimes name it under <c>/run/netns</c>
    /// (podman) or <c>/var/run/netns</c> (containerd, CRI-O), the same directory on the host, where <c>/var/run</c>
    /// links to <c>/run</c>; the agent's pod mounts the host's directory at <c>/var/run/netns</c> only (install.yaml),
    /// where the image has no such link. A path that does not exist as given is looked up there.
    /// </summary>
    public static string Locate(string path)
    {
        const string run = "/run/netns/";
        if (!File.Exists(path) && path.StartsWith(run, StringComparison.Ordinal) && File.Exists("/var" + path))
        {
            return "/var" + path;
        }
        return path;
    }

    public static Netns Open(string path)
    {
        try
        {
            return new Netns(path, File.OpenHandle(path, FileMode.Open, FileAccess.Read));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot open network namespace {path}: {ex.Message}", ex);
        }
    }

    /// <summary>Creates a TCP socket inside this namespace, optionally with SO_MARK (so capture rules skip it).</summary>
    public Socket CreateSocket(AddressFamily family, uint? mark = null)
    {
        var host = s_host.Value;
        Socket socket;
        if (setns(_handle.DangerousGetHandle().ToInt32(), CloneNewNet) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"setns into {Path} failed: errno {errno} (the agent needs CAP_SYS_ADMIN)");
        }
        try
        {
            socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        }
        finally
        {
            if (setns(host.DangerousGetHandle().ToInt32(), CloneNewNet) != 0)
            {
                Environment.FailFast($"could not return to the agent's network namespace (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        try
        {
            if (mark is { } m)
            {
                Sockets.SocketOptions.SetMark(socket, m);
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return socket;
    }

    public void Dispose() => _handle.Dispose();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);
}
