namespace Ambient.Ztunnel.Tests.InPod.Support;

/// <summary>
/// A cluster shared by the tests of one class (xunit class fixture). It is only built when the in-pod tests can run:
/// xunit creates class fixtures even when every test of the class is skipped.
/// </summary>
public abstract class ClusterFixture : IAsyncLifetime
{
    private InPodCluster? _cluster;

    internal InPodCluster Cluster => _cluster ?? throw new InvalidOperationException("the cluster was not started: " + (RootFactAttribute.SkipReason ?? "start-up failed"));

    internal abstract ClusterSpec Spec { get; }

    /// <summary>Apps and other state the tests of the class share, after the pods exist.</summary>
    internal virtual Task StartAppsAsync(InPodCluster cluster) => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        if (RootFactAttribute.SkipReason is not null)
        {
            return;
        }
        _cluster = await InPodCluster.StartAsync(Spec);
        try
        {
            await StartAppsAsync(_cluster);
        }
        catch
        {
            await _cluster.DisposeAsync();
            _cluster = null;
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}
