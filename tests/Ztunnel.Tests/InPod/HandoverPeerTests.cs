using System.Net.Sockets;
using Ambient.Ztunnel.InPod;

namespace Ambient.Ztunnel.Tests.InPod;

/// <summary>
/// How a newer agent tells that an agent is running on the node (it then waits for its own sources before taking the
/// pods over) from a first start or a crash (it re-adopts at once): the hand-over socket must answer.
/// </summary>
public sealed class HandoverPeerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ambient-handover-peer-").FullName;

    private string SocketPath => Path.Combine(_dir, "handover.sock");

    [Fact]
    public void NoSocketFileMeansNoRunningAgent() => Assert.False(HandoverClient.PeerIsListening(SocketPath));

    [Fact]
    public void ASocketFileLeftByACrashedAgentMeansNoRunningAgent()
    {
        // A process that bound the socket and died: the file stays (.NET would unlink it on a clean close).
        var psi = new System.Diagnostics.ProcessStartInfo("python3")
        {
            ArgumentList = { "-c", "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1]); s.listen(1)", SocketPath },
        };
        using (var python = System.Diagnostics.Process.Start(psi)!)
        {
            Assert.True(python.WaitForExit(TimeSpan.FromSeconds(30)));
            Assert.Equal(0, python.ExitCode);
        }
        Assert.True(File.Exists(SocketPath));
        Assert.False(HandoverClient.PeerIsListening(SocketPath));
    }

    [Fact]
    public void AListeningSocketMeansARunningAgent()
    {
        using var running = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        running.Bind(new UnixDomainSocketEndPoint(SocketPath));
        running.Listen(1);
        Assert.True(HandoverClient.PeerIsListening(SocketPath));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
