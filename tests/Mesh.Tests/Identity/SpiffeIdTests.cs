using Ambient.Mesh.Identity;

namespace Ambient.Mesh.Tests.Identity;

public sealed class SpiffeIdTests
{
    [Theory]
    [InlineData("spiffe://cluster.local/ns/default/sa/bookinfo", "cluster.local", "default", "bookinfo")]
    [InlineData("spiffe://td/ns/a/sa/b", "td", "a", "b")]
    [InlineData("spiffe://my-domain_1.example/ns/Kube-System/sa/Default.SA_2", "my-domain_1.example", "Kube-System", "Default.SA_2")]
    public void Parses_istio_form(string uri, string trustDomain, string ns, string sa)
    {
        Assert.True(SpiffeId.TryParse(uri, out SpiffeId? id));
        Assert.Equal(new SpiffeId(trustDomain, ns, sa), id);
        Assert.Equal(uri, id.Value.ToString());
        Assert.Equal(uri["spiffe://".Length..], id.Value.Principal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("spiffe://")]
    [InlineData("spiffe://cluster.local")]
    [InlineData("spiffe://cluster.local/")]
    [InlineData("SPIFFE://cluster.local/ns/a/sa/b")]
    [InlineData("Spiffe://cluster.local/ns/a/sa/b")]
    [InlineData("https://cluster.local/ns/a/sa/b")]
    [InlineData("spiffe:/cluster.local/ns/a/sa/b")]
    [InlineData("spiffe://Cluster.local/ns/a/sa/b")]
    [InlineData("spiffe://cluster.local:443/ns/a/sa/b")]
    [InlineData("spiffe://user@cluster.local/ns/a/sa/b")]
    [InlineData("spiffe:///ns/a/sa/b")]
    [InlineData("spiffe://cluster.local/ns/a/sa/b/")]
    [InlineData("spiffe://cluster.local/ns/a/sa/b/extra")]
    [InlineData("spiffe://cluster.local/ns/a/sa/")]
    [InlineData("spiffe://cluster.local/ns//sa/b")]
    [InlineData("spiffe://cluster.local//ns/a/sa/b")]
    [InlineData("spiffe://cluster.local/ns/a/sb/b")]
    [InlineData("spiffe://cluster.local/NS/a/sa/b")]
    [InlineData("spiffe://cluster.local/sa/b/ns/a")]
    [InlineData("spiffe://cluster.local/ns/a/sa/b?x=1")]
    [InlineData("spiffe://cluster.local/ns/a/sa/b#frag")]
    [InlineData("spiffe://cluster.local/ns/a%20b/sa/b")]
    [InlineData("spiffe://cluster.local/ns/a b/sa/b")]
    [InlineData("spiffe://cluster.local/ns/../sa/b")]
    [InlineData("spiffe://cluster.local/ns/./sa/b")]
    [InlineData("spiffe://cluster.local/ns/a/sa/b\n")]
    [InlineData(" spiffe://cluster.local/ns/a/sa/b")]
    [InlineData("spiffe://cluster.local/ns/ä/sa/b")]
    [InlineData("spiffe://cluster.local/workload/a")]
    public void Rejects_everything_else(string? uri)
    {
        Assert.False(SpiffeId.TryParse(uri, out SpiffeId? id));
        Assert.Null(id);
    }

    [Fact]
    public void Rejects_overlong_ids()
    {
        string longName = new('a', 2100);
        Assert.False(SpiffeId.TryParse($"spiffe://cluster.local/ns/{longName}/sa/b", out _));
        Assert.False(SpiffeId.TryParse($"spiffe://{new string('a', 256)}/ns/a/sa/b", out _));
    }

    [Fact]
    public void Equal_ids_compare_equal()
    {
        Assert.True(SpiffeId.TryParse("spiffe://cluster.local/ns/a/sa/b", out SpiffeId? first));
        Assert.True(SpiffeId.TryParse("spiffe://cluster.local/ns/a/sa/b", out SpiffeId? second));
        Assert.Equal(first, second);
        Assert.Equal(first.GetHashCode(), second.GetHashCode());
    }
}
