using System.Net;
using System.Net.Sockets;
using Ambient.Mesh.Model;
using Ambient.Ztunnel.Tests.Support;

namespace Ambient.Ztunnel.Tests.Interop;

/// <summary>
/// Node's http2 client (nghttp2) as a foreign HBONE peer of node-b's agent, with its own certificate from the mesh CA.
/// If the agent's HTTP/2, HPACK or TLS only worked against itself, these would fail.
/// </summary>
public sealed class NodeHttp2ClientTests
{
    private const string NodeClient = "nodeclient";
    private const string NodeClientId = "spiffe://cluster.local/ns/default/sa/nodeclient";

    [RequiresToolsFact("node")]
    public async Task Concurrent_connect_streams_echo_intact_and_half_close_reaches_the_app()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        var (cert, key) = pki.Write(NodeClient, pki.Issue(MeshPki.Id(NodeClient)));
        var echo = mesh.Echo.EndPoint.ToString();
        var sizes = new[] { 1, 100, 16_384, 16_385, 65_536, 300_000, 1_000_000, 3 };

        var report = await NodeHboneClient.RunAsync(Hbone(mesh), pki, cert, key, sizes.Select(n => new NodeRequest("CONNECT", echo, n)).ToArray());

        Assert.Null(report.SessionError);
        Assert.Equal("h2", report.Alpn);
        Assert.True(report.Authorized, "node verified the agent's chain against the mesh CA");
        Assert.Equal(sizes.Length, report.Requests.Count);
        foreach (var r in report.Requests)
        {
            Assert.True(r.Status == 200 && r.Intact == true && r.Sent == r.Received, r.Describe);
            // The echo server answers our END_STREAM (FIN) with its own FIN: the agent must turn it into END_STREAM,
            // and end the stream cleanly (NGHTTP2_NO_ERROR), not reset it.
            Assert.True(r.Ended, $"no END_STREAM from the agent: {r.Describe}");
            Assert.Equal(0, r.RstCode);
        }
        Assert.Equal(sizes.Length, mesh.Echo.Accepted);
        await TwoNodeMesh.EventuallyAsync(() => Lines(mesh.AccessLogB, $"src.identity=\"{NodeClientId}\"").Length == sizes.Length, "one inbound access log line per stream");
        foreach (var line in Lines(mesh.AccessLogB, $"src.identity=\"{NodeClientId}\""))
        {
            Assert.Contains("direction=\"inbound\"", line, StringComparison.Ordinal);
            Assert.Contains("dst.identity=\"spiffe://cluster.local/ns/default/sa/echo\"", line, StringComparison.Ordinal);
            Assert.DoesNotContain("error=", line, StringComparison.Ordinal);
        }
    }

    [RequiresToolsFact("node")]
    public async Task Connect_to_a_port_where_nothing_listens_is_answered_503()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        var (cert, key) = pki.Write(NodeClient, pki.Issue(MeshPki.Id(NodeClient)));
        var closed = new IPEndPoint(mesh.ServerIp, UnusedPort(mesh.ServerIp));

        var report = await NodeHboneClient.RunAsync(Hbone(mesh), pki, cert, key, new NodeRequest("CONNECT", closed.ToString(), 10));

        var r = Assert.Single(report.Requests);
        Assert.True(r.Status == 503, r.Describe);
        Assert.Equal(0, r.Received);
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogB.ToString().Contains("response_flags=\"CONNECT\"", StringComparison.Ordinal), "connect failure logged");
        Assert.Contains($"src.identity=\"{NodeClientId}\"", mesh.AccessLogB.ToString(), StringComparison.Ordinal);
    }

    [RequiresToolsFact("node")]
    public async Task A_denied_principal_is_answered_401_and_nothing_reaches_the_app()
    {
        await using var mesh = await TwoNodeMesh.StartAsync((m, c) => c with
        {
            Policies =
            [
                new AuthorizationPolicy
                {
                    Name = "deny-nodeclient",
                    Namespace = "default",
                    Scope = PolicyScope.Namespace,
                    Action = PolicyAction.Deny,
                    Rules = [new PolicyRule([new PolicyClause([new PolicyMatch { Principals = [new StringMatch(StringMatchKind.Exact, "cluster.local/ns/default/sa/nodeclient")] }])])],
                },
            ],
        });
        using var pki = MeshPki.Open(mesh.StateDir);
        var (cert, key) = pki.Write(NodeClient, pki.Issue(MeshPki.Id(NodeClient)));

        var report = await NodeHboneClient.RunAsync(Hbone(mesh), pki, cert, key, new NodeRequest("CONNECT", mesh.Echo.EndPoint.ToString(), 10));

        var r = Assert.Single(report.Requests);
        Assert.True(r.Status == 401, r.Describe);
        Assert.Equal(0, mesh.Echo.Accepted);
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogB.ToString().Contains("default/deny-nodeclient", StringComparison.Ordinal), "deny logged with the policy name");

        // The client mesh identity is not denied: the policy matched the principal, not everything.
        var (socket, reply) = await mesh.ConnectAsync(mesh.ServiceEndPoint);
        socket.Dispose();
        Assert.Equal(0, reply);
    }

    /// <summary>
    /// A GET is a well-formed HTTP/2 request, just not a tunnel: the agent answers it with :status 400 on that stream
    /// (not a stream reset or a connection error), and a CONNECT on the same connection still works.
    /// </summary>
    [RequiresToolsFact("node")]
    public async Task A_get_instead_of_connect_is_answered_400_and_the_connection_keeps_working()
    {
        await using var mesh = await TwoNodeMesh.StartAsync();
        using var pki = MeshPki.Open(mesh.StateDir);
        var (cert, key) = pki.Write(NodeClient, pki.Issue(MeshPki.Id(NodeClient)));
        var echo = mesh.Echo.EndPoint.ToString();

        var report = await NodeHboneClient.RunAsync(Hbone(mesh), pki, cert, key,
            new NodeRequest("GET", echo, Path: "/"),
            new NodeRequest("CONNECT", echo, 1000));

        Assert.Null(report.SessionError);
        var get = report.Requests[0];
        var connect = report.Requests[1];
        Assert.True(get.Status == 400, get.Describe);
        Assert.True(connect.Status == 200 && connect.Intact == true, connect.Describe);
        Assert.Equal(1, mesh.Echo.Accepted);
        await TwoNodeMesh.EventuallyAsync(() => mesh.AccessLogB.ToString().Contains("HBONE accepts only CONNECT", StringComparison.Ordinal), "bad request logged");
    }

    private static IPEndPoint Hbone(TwoNodeMesh mesh) => new(mesh.ServerIp, 15008);

    internal static int UnusedPort(IPAddress ip)
    {
        // Bound then released: nothing listens there afterwards (nothing else binds this test's private address).
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(ip, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private static string[] Lines(StringWriter log, string needle) =>
        log.ToString().Split('\n').Where(l => l.Contains(needle, StringComparison.Ordinal)).ToArray();
}
