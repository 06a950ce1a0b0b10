using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace Ambient.Mesh.Tests.Tls;

/// <summary>A real loopback TCP connection with SslStream on both ends, handshaken concurrently.</summary>
internal sealed class TlsPair : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly TcpClient _clientSocket;
    private readonly TcpClient _serverSocket;

    private TlsPair(TcpClient clientSocket, TcpClient serverSocket)
    {
        _clientSocket = clientSocket;
        _serverSocket = serverSocket;
        Client = new SslStream(clientSocket.GetStream(), leaveInnerStreamOpen: false);
        Server = new SslStream(serverSocket.GetStream(), leaveInnerStreamOpen: false);
    }

    public SslStream Client { get; }
    public SslStream Server { get; }
    public Exception? ClientError { get; private set; }
    public Exception? ServerError { get; private set; }

    public static async Task<TlsPair> HandshakeAsync(SslClientAuthenticationOptions client, SslServerAuthenticationOptions server)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var clientSocket = new TcpClient();
        Task connect = clientSocket.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        TcpClient serverSocket = await listener.AcceptTcpClientAsync().WaitAsync(Timeout);
        await connect.WaitAsync(Timeout);

        var pair = new TlsPair(clientSocket, serverSocket);
        Task clientHandshake = pair.Client.AuthenticateAsClientAsync(client);
        Task serverHandshake = pair.Server.AuthenticateAsServerAsync(server);
        pair.ServerError = await CaptureAsync(serverHandshake);
        pair.ClientError = await CaptureAsync(clientHandshake);
        return pair;
    }

    /// <summary>
    /// .NET judges the peer certificate after OpenSSL has finished the handshake, so in TLS 1.3 the side that was
    /// refused can complete its handshake and only learn of the refusal when the refusing side closes the
    /// connection, as the agent does on a failed handshake.
    /// </summary>
    public Task AssertClientIsCutOffAsync() => AssertCutOffAsync(refusing: Server, refused: Client, ClientError);

    public Task AssertServerIsCutOffAsync() => AssertCutOffAsync(refusing: Client, refused: Server, ServerError);

    private static async Task AssertCutOffAsync(SslStream refusing, SslStream refused, Exception? refusedError)
    {
        await refusing.DisposeAsync();
        if (refusedError is not null)
        {
            return;
        }

        var buffer = new byte[16];
        try
        {
            int read = await refused.ReadAsync(buffer).AsTask().WaitAsync(Timeout);
            Assert.Equal(0, read);
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Server.DisposeAsync();
        _clientSocket.Dispose();
        _serverSocket.Dispose();
    }

    private static async Task<Exception?> CaptureAsync(Task handshake)
    {
        try
        {
            await handshake.WaitAsync(Timeout);
            return null;
        }
        catch (Exception ex) when (ex is not TimeoutException)
        {
            return ex;
        }
    }
}
