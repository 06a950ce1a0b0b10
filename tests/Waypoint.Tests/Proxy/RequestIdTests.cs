using Ambient.Waypoint.Telemetry;
using Xunit;

namespace Ambient.Waypoint.Tests.Proxy;

/// <summary>
/// x-request-id values: version 4 UUIDs in the usual text form (what Istio's and Envoy's tools parse), never repeated
/// across the batches of random bytes they are cut from, nor between threads.
/// </summary>
public sealed class RequestIdTests
{
    [Fact]
    public void IdsAreVersion4UuidsAndNeverRepeatAcrossBatches()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        // 256 ids per 4 KiB batch: 2,000 ids cross seven refills.
        for (int i = 0; i < 2000; i++)
        {
            string id = RequestId.Next();
            Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", id);
            Assert.True(Guid.TryParse(id, out var guid));
            Assert.Equal(4, guid.Version);
            Assert.True(seen.Add(id), $"id {i} repeated: {id}");
        }
    }

    [Fact]
    public async Task ThreadsDrawDifferentIds()
    {
        // Each thread has its own batch: two threads must not cut the same bytes.
        var tasks = Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(
            () => Enumerable.Range(0, 500).Select(_ => RequestId.Next()).ToArray(), TaskCreationOptions.LongRunning)).ToArray();
        var all = (await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30))).SelectMany(ids => ids).ToList();
        Assert.Equal(all.Count, all.Distinct(StringComparer.Ordinal).Count());
    }
}
