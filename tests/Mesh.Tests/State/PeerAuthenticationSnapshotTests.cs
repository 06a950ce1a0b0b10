using System.Collections.Immutable;
using System.Net;
using Ambient.Mesh.Model;
using Ambient.Mesh.Sources;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Ambient.Mesh.Tests.State;

/// <summary>
/// The snapshot's PeerAuthentication index follows the store: a policy added, changed or removed by any source is the
/// answer of the next snapshot (the inbound plaintext path asks it per connection), and other changes keep it.
/// </summary>
public sealed class PeerAuthenticationSnapshotTests
{
    private static readonly Workload Web = new()
    {
        Uid = "Kubernetes//Pod/shop/web-0",
        Name = "web-0",
        Namespace = "shop",
        WorkloadIps = [IPAddress.Parse("127.10.0.1")],
        Protocol = InboundProtocol.Hbone,
        Labels = ImmutableDictionary<string, string>.Empty.Add("app", "web"),
    };

    private static PeerAuthentication Policy(string ns, string name, MtlsMode mode, string? app = null, int? port = null, MtlsMode portMode = MtlsMode.Unset) => new()
    {
        Namespace = ns,
        Name = name,
        Mode = mode,
        Selector = app is null ? null : ImmutableDictionary<string, string>.Empty.Add("app", app),
        PortLevelMtls = port is { } p ? ImmutableDictionary<int, MtlsMode>.Empty.Add(p, portMode) : ImmutableDictionary<int, MtlsMode>.Empty,
    };

    [Fact]
    public void PoliciesFromAnySource_DecidePlaintext_AndLiveChangesApply()
    {
        var store = new MeshStore(NullLogger<MeshStore>.Instance);
        var files = store.AddSource("files", 40);
        var api = store.AddSource("kubernetes", 30);
        files.Replace(new MeshResources { Workloads = [Web] });
        Assert.True(store.Current.PeerAuthentication.PlaintextAllowed(Web, 8080).Allowed);
        Assert.Equal(MtlsMode.Permissive, store.Current.PeerAuthentication.PlaintextAllowed(Web, 8080).EffectiveMode);

        // Mesh-wide STRICT from the API source.
        api.Replace(new MeshResources { Objects = [Policy("istio-system", "default", MtlsMode.Strict)] });
        var strict = store.Current.PeerAuthentication.PlaintextAllowed(Web, 8080);
        Assert.False(strict.Allowed);
        Assert.Equal("PeerAuthentication/istio-system/default", strict.PolicyKey);

        // The namespace relaxes it; a workload policy makes one port STRICT again.
        files.Replace(new MeshResources
        {
            Workloads = [Web],
            Objects = [Policy("shop", "relaxed", MtlsMode.Permissive), Policy("shop", "web", MtlsMode.Unset, app: "web", port: 9090, portMode: MtlsMode.Strict)],
        });
        Assert.True(store.Current.PeerAuthentication.PlaintextAllowed(Web, 8080).Allowed);
        Assert.False(store.Current.PeerAuthentication.PlaintextAllowed(Web, 9090).Allowed);

        // A change of something else keeps the index (same object), a removal applies.
        var before = store.Current.PeerAuthentication;
        api.Apply(new MeshDelta { Upserts = new MeshResources { Workloads = [Web with { Uid = "Kubernetes//Pod/shop/web-1", Name = "web-1", WorkloadIps = [IPAddress.Parse("127.10.0.2")] }] } });
        Assert.Same(before, store.Current.PeerAuthentication);
        files.Replace(new MeshResources { Workloads = [Web] });
        Assert.False(store.Current.PeerAuthentication.PlaintextAllowed(Web, 8080).Allowed);
        api.Replace(MeshResources.Empty);
        Assert.True(store.Current.PeerAuthentication.PlaintextAllowed(Web, 8080).Allowed);
    }
}
