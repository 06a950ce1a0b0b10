using Ambient.Mesh.Http2;
using Ambient.Mesh.Http2.Frames;

namespace Ambient.Mesh.Tests.Http2;

/// <summary>Random and mutated frames: the server must never throw out of its loops or hang.</summary>
public sealed class Http2FuzzTests
{
    [Fact]
    public async Task RandomFramesNeverHangOrCrash()
    {
        var random = new Random(12345);
        var tasks = new List<Task>();
        for (int round = 0; round < 60; round++)
        {
            int seed = random.Next();
            tasks.Add(RunRoundAsync(seed));
            if (tasks.Count == 8)
            {
                await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
                tasks.Clear();
            }
        }

        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
    }

    private static async Task RunRoundAsync(int seed)
    {
        var random = new Random(seed);
        var (peer, server) = await RawPeer.ConnectToServerAsync(new Http2Options { MaxConcurrentStreams = 4, InitialStreamWindowSize = 70000 });
        await using (server)
        {
            await using (peer)
            {
                Task drain = Task.Run(async () =>
                {
                    while (await peer.ReadFrameAsync() is not null)
                    {
                    }
                });
                var batch = new MemoryStream();
                int streamId = 1;
                for (int i = 0; i < 200; i++)
                {
                    var type = (Http2FrameType)random.Next(0, 12);
                    var flags = (Http2FrameFlags)(random.Next(4) == 0 ? random.Next(256) : random.Next(2) | (random.Next(2) << 2));
                    int id = random.Next(6) switch
                    {
                        0 => 0,
                        1 => random.Next(1, 20),
                        _ => streamId,
                    };
                    byte[] payload;
                    if (type == Http2FrameType.Headers && random.Next(3) > 0)
                    {
                        payload = peer.EncodeHeaders(Http2TestUtil.Connect($"10.0.0.{i}:80"));
                        flags |= Http2FrameFlags.EndHeaders;
                        streamId += 2;
                        if (random.Next(4) == 0 && payload.Length > 0)
                        {
                            payload[random.Next(payload.Length)] ^= (byte)(1 << random.Next(8));
                        }
                    }
                    else
                    {
                        payload = new byte[random.Next(4) == 0 ? random.Next(0, 20000) : random.Next(0, 16)];
                        random.NextBytes(payload);
                    }

                    byte[] header = new byte[9];
                    Http2FrameHeader.Write(header, payload.Length, type, flags, id);
                    batch.Write(header);
                    batch.Write(payload);
                }

                try
                {
                    await peer.SendAsync(batch.ToArray());
                }
                catch (IOException)
                {
                    // The server may already have closed on us.
                }

                await Task.Delay(random.Next(50));
            }

            // Whatever happened, the connection winds down once the peer is gone.
            await server.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }
}
