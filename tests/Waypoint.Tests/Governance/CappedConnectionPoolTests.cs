using System.Net;
using Ambient.Waypoint.Governance;

namespace Ambient.Waypoint.Tests.Governance;

/// <summary>
/// DestinationRule <c>http.maxRequestsPerConnection</c> above 1 against scripted lanes (a lane is one upstream
/// connection per endpoint): which connection each request went out on, which carried <c>Connection: close</c>, and
/// when a full connection is closed.
/// </summary>
public sealed class CappedConnectionPoolTests
{
    /// <summary>A fake connection: records the requests it carried and whether it was closed.</summary>
    private sealed class FakeLane(int id, List<FakeLane> all) : HttpMessageHandler
    {
        public int Id { get; } = id;
        public List<HttpRequestMessage> Requests { get; } = [];
        public bool Closed { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (all)
            {
                Requests.Add(request);
            }
            var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent($"lane {Id}") };
            return Task.FromResult(response);
        }

        protected override void Dispose(bool disposing)
        {
            Closed = true;
            base.Dispose(disposing);
        }
    }

    private static (CappedConnectionPool Pool, List<FakeLane> Lanes) Create(int max)
    {
        var lanes = new List<FakeLane>();
        var pool = new CappedConnectionPool(max, () =>
        {
            lock (lanes)
            {
                var lane = new FakeLane(lanes.Count, lanes);
                lanes.Add(lane);
                return lane;
            }
        });
        return (pool, lanes);
    }

    private static HttpRequestMessage Request(Version version, string authority = "10.0.0.1:8080") =>
        new(HttpMethod.Get, $"http://{authority}/") { Version = version };

    private static async Task<string> SendAsync(CappedConnectionPool pool, HttpRequestMessage request)
    {
        using var response = await pool.SendAsync(request, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        return await response.Content.ReadAsStringAsync().WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Theory]
    [InlineData(3, 7, "0 0 0 1 1 1 2", "2 5")]   // the third request on a connection says close; two connections closed
    [InlineData(2, 4, "0 0 1 1", "1 3")]
    [InlineData(5, 3, "0 0 0", "")]              // under the limit: one connection kept
    public async Task Http1RequestsOneAfterAnotherFillAConnectionThenMoveOn(int max, int requests, string lanes, string closing)
    {
        var (pool, made) = Create(max);
        using var _ = pool;
        var served = new List<string>();
        var close = new List<string>();
        for (int i = 0; i < requests; i++)
        {
            var request = Request(HttpVersion.Version11);
            served.Add((await SendAsync(pool, request))["lane ".Length..]);
            if (request.Headers.ConnectionClose == true)
            {
                close.Add(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        Assert.Equal(lanes, string.Join(' ', served));
        Assert.Equal(closing, string.Join(' ', close));
        // Every full connection was closed once its last response was read; the one still under the limit stays.
        Assert.All(made, l => Assert.Equal(l.Requests.Count == max, l.Closed));
    }

    [Fact]
    public async Task Http1RequestsInFlightTogetherNeverShareAConnection()
    {
        var (pool, made) = Create(10);
        using var _ = pool;
        using var first = await pool.SendAsync(Request(HttpVersion.Version11), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        using var second = await pool.SendAsync(Request(HttpVersion.Version11), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(2, made.Count);
        first.Dispose();
        // The first connection is free again (its response is done): the next request reuses it.
        Assert.Equal("lane 0", await SendAsync(pool, Request(HttpVersion.Version11)));
    }

    [Fact]
    public async Task Http2StreamsShareAConnectionUntilTheLimitAndItClosesAfterTheLastOne()
    {
        var (pool, made) = Create(3);
        using var _ = pool;
        var held = new List<HttpResponseMessage>();
        for (int i = 0; i < 3; i++)
        {
            held.Add(await pool.SendAsync(Request(HttpVersion.Version20), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)));
        }
        Assert.Single(made);
        Assert.All(made[0].Requests, r => Assert.Null(r.Headers.ConnectionClose)); // HTTP/2 has no Connection header
        // The fourth stream opens a new connection; the full one drains: closed only when its last stream is done.
        Assert.Equal("lane 1", await SendAsync(pool, Request(HttpVersion.Version20)));
        held[0].Dispose();
        held[1].Dispose();
        Assert.False(made[0].Closed);
        held[2].Dispose();
        Assert.True(made[0].Closed);
        Assert.Equal(1, pool.OpenLanes);
    }

    [Fact]
    public async Task EachEndpointAndProtocolCountsOnItsOwnConnections()
    {
        var (pool, made) = Create(2);
        using var _ = pool;
        Assert.Equal("lane 0", await SendAsync(pool, Request(HttpVersion.Version11, "10.0.0.1:8080")));
        Assert.Equal("lane 1", await SendAsync(pool, Request(HttpVersion.Version11, "10.0.0.2:8080")));
        Assert.Equal("lane 2", await SendAsync(pool, Request(HttpVersion.Version20, "10.0.0.1:8080")));
        Assert.Equal("lane 0", await SendAsync(pool, Request(HttpVersion.Version11, "10.0.0.1:8080")));
        Assert.True(made[0].Closed);
        Assert.False(made[1].Closed);
    }

    [Fact]
    public async Task AResponseWithoutABodyFreesItsConnectionAtOnce()
    {
        var (pool, made) = Create(10);
        using var _ = pool;
        // HEAD: nothing follows the headers, so the response is never read; the connection must still be reused.
        var head = await pool.SendAsync(new HttpRequestMessage(HttpMethod.Head, "http://10.0.0.1:8080/"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("lane 0", await SendAsync(pool, Request(HttpVersion.Version11)));
        Assert.Single(made);
        head.Dispose();
    }

    [Fact]
    public async Task AFailedRequestGivesItsSlotBack()
    {
        var pool = new CappedConnectionPool(5, () => new FailingHandler());
        using var _ = pool;
        await Assert.ThrowsAsync<HttpRequestException>(() => pool.SendAsync(Request(HttpVersion.Version11), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAsync<HttpRequestException>(() => pool.SendAsync(Request(HttpVersion.Version11), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(1, pool.OpenLanes); // the second reused the first's (free) connection
    }

    private sealed class FailingHandler : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromException<HttpResponseMessage>(new HttpRequestException("refused"));
    }
}
