using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// A listening unix socket at a path that successive agents on a node share (the CNI socket, the hand-over socket).
/// It is bound under a name of its own, then renamed over the path: the path always names a socket (a previous
/// agent's until the rename, stale after a crash or still draining, then ours), never nothing. It also keeps .NET from
/// unlinking the path when the listening socket is disposed (it deletes the name it bound), so the path is removed
/// only by <see cref="Release"/>, and only while it is still ours (issue 13: a draining agent must not delete the
/// socket its successor serves).
/// </summary>
internal sealed class UnixSocketFile
{
    private static int s_sequence;
    private readonly FileIdentity? _created;

    private UnixSocketFile(string path, Socket socket, FileIdentity? created)
    {
        Path = path;
        Socket = socket;
        _created = created;
    }

    public string Path { get; }

    /// <summary>The listening socket (root-only: mode 0600).</summary>
    public Socket Socket { get; }

    public static UnixSocketFile BindReplacing(string path, SocketType type)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        string bound = TemporaryName(path);
        var socket = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
        try
        {
            if (bound == path && File.Exists(path))
            {
                File.Delete(path); // no room for a temporary name (sun_path is 108 bytes): replace in two steps
            }
            socket.Bind(new UnixDomainSocketEndPoint(bound));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(bound, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            socket.Listen(64);
            var created = FileIdentity.Of(bound);
            if (bound != path)
            {
                File.Move(bound, path, overwrite: true);
            }
            return new UnixSocketFile(path, socket, created);
        }
        catch
        {
            socket.Dispose();
            if (bound != path)
            {
                File.Delete(bound);
            }
            throw;
        }
    }

    /// <summary>A short name beside <paramref name="path"/>, unique to this process and socket; the path itself if it would not fit.</summary>
    private static string TemporaryName(string path)
    {
        string name = System.IO.Path.Combine(
            System.IO.Path.GetDirectoryName(path)!,
            $".sock{Environment.ProcessId:x}.{Interlocked.Increment(ref s_sequence):x}");
        return System.Text.Encoding.UTF8.GetByteCount(name) <= 107 ? name : path;
    }

    /// <summary>Deletes the path if it still names the socket this agent bound; another agent's is left in place.</summary>
    public void Release(ILogger logger, string what)
    {
        var current = FileIdentity.Of(Path);
        if (current is not null && current == _created)
        {
            try
            {
                File.Delete(Path);
            }
            catch (IOException)
            {
            }
        }
        else if (current is not null)
        {
            InPodLog.SocketFileTakenOver(logger, what, Path);
        }
    }
}
