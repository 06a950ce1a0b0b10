using System.Net;
using System.Net.Sockets;
using Ambient.Ztunnel.Proxy;
using Ambient.Ztunnel.Sockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// The mechanism under the upgrade hand-over (issue 12), on loopback: a listening socket passed over a unix socket
/// (SCM_RIGHTS) is the same kernel socket, so when the old owner lets go, connections waiting in its backlog are
/// accepted by the new owner instead of being reset.
/// </summary>
public sealed class ListenerHandoverTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_released_listening_socket_keeps_its_backlog_for_the_process_it_was_passed_to()
    {
        var listening = Listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var endpoint = (IPEndPoint)listening.LocalEndPoint!;
        await using var old = new Listener("old", listening, s => Answer(s, "old"), NullLogger.Instance);
        old.Start();

        var (a, b) = ConnectedPair();
        using var _ = a;
        using var __ = b;
        UnixRights.Send(a, "listener"u8, [(int)listening.SafeHandle.DangerousGetHandle()], Timeout);
        var buf = new byte[64];
        var (n, fds) = UnixRights.Receive(b, buf, Timeout);
        Assert.Equal("listener"u8.ToArray(), buf[..n]);
        var passed = new Socket(new SafeSocketHandle(Assert.Single(fds), ownsHandle: true));
        Assert.Equal(endpoint, passed.LocalEndPoint);

        await old.ReleaseToSuccessorAsync();

        // Nobody accepts now: these complete into the backlog. Closing the old descriptor must not have reset it.
        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < 50; i++)
            {
                var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(c);
                await c.ConnectAsync(endpoint).WaitAsync(Timeout);
            }
            await using var successor = new Listener("new", passed, s => Answer(s, "new"), NullLogger.Instance);
            successor.Start();
            foreach (var c in clients)
            {
                var answer = new byte[8];
                int got = await c.ReceiveAsync(answer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Timeout);
                Assert.Equal("new", System.Text.Encoding.ASCII.GetString(answer, 0, got));
            }
        }
        finally
        {
            foreach (var c in clients)
            {
                c.Dispose();
            }
        }
    }

    [Fact]
    public void A_message_without_descriptors_arrives_with_none_and_a_closed_peer_reads_as_zero()
    {
        var (a, b) = ConnectedPair();
        using var _ = b;
        var buf = new byte[16];
        Assert.Throws<TimeoutException>(() => UnixRights.Receive(b, buf, TimeSpan.FromMilliseconds(50)));
        UnixRights.Send(a, "{}"u8, [], Timeout);
        var (n, fds) = UnixRights.Receive(b, buf, Timeout);
        Assert.Equal(2, n);
        Assert.Empty(fds);
        a.Dispose();
        Assert.Equal(0, UnixRights.Receive(b, buf, Timeout).Length);
    }

    private static async Task Answer(Socket s, string who)
    {
        using (s)
        {
            await s.SendAsync(System.Text.Encoding.ASCII.GetBytes(who), SocketFlags.None);
        }
    }

    /// <summary>A connected SEQPACKET pair through a listening socket in a temp directory (.NET has no socketpair).</summary>
    private static (Socket A, Socket B) ConnectedPair()
    {
        string dir = Directory.CreateTempSubdirectory("ambient-rights-").FullName;
        var a = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            using var l = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
            l.Bind(new UnixDomainSocketEndPoint(Path.Combine(dir, "s")));
            l.Listen(1);
            a.Connect(new UnixDomainSocketEndPoint(Path.Combine(dir, "s")));
            return (a, l.Accept());
        }
        catch
        {
            a.Dispose();
            throw;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
