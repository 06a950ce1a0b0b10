using System.Net;
using System.Net.Sockets;

namespace Ambient.NodeBench;

/// <summary>
/// The server pod's application: answers every request with a fixed 1 KB body. It does no work per request so
/// it is never the bottleneck; the proxies between client and server are what is measured.
/// </summary>
internal static class HttpServer
{
    public static async Task<int> RunAsync(Args args)
    {
        int size = args.Int("size", 1024);
        byte[] keepAlive = Http1.Message("HTTP/1.1 200 OK", size, close: false);
        byte[] closing = Http1.Message("HTTP/1.1 200 OK", size, close: true);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(new IPEndPoint(IPAddress.Any, args.Int("port")));
        // A deep backlog: the connection-rate and idle tests open connections in bursts.
        listener.Listen(65535);
        while (true)
        {
            Socket s = await listener.AcceptAsync();
            _ = ServeAsync(s, keepAlive, closing);
        }
    }

    private static async Task ServeAsync(Socket socket, byte[] keepAlive, byte[] closing)
    {
        using (socket)
        {
            socket.NoDelay = true;
            var reader = new Http1Reader(socket);
            try
            {
                while (true)
                {
                    var (ok, close) = await reader.ReadMessageAsync(CancellationToken.None);
                    if (!ok)
                    {
                        return;
                    }
                    await Http1.SendAllAsync(socket, close ? closing : keepAlive, CancellationToken.None);
                    if (close)
                    {
                        // The server closes first, as HTTP/1.1 servers do: TIME_WAIT stays on this side.
                        socket.Shutdown(SocketShutdown.Send);
                        return;
                    }
                }
            }
            catch (SocketException)
            {
            }
        }
    }
}
