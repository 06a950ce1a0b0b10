using System.Collections.Immutable;

namespace Ambient.Mesh.Kubernetes.Api;

/// <summary>
/// How <see cref="KubernetesApiWatcher"/> reaches the API server and what it watches. Restart-only: read once by
/// <see cref="KubernetesApiWatcher.StartAsync"/>.
/// </summary>
public sealed record KubernetesApiOptions
{
    /// <summary>
    /// A kubeconfig file (<c>--kubeconfig</c>). Null: the <c>KUBECONFIG</c> variable (a list of files, merged as
    /// kubectl does), else the pod's service account (in-cluster), else <c>~/.kube/config</c>.
    /// </summary>
    public string? KubeconfigPath { get; init; }

    /// <summary>The kubeconfig context to use; null for its current-context.</summary>
    public string? Context { get; init; }

    /// <summary>What to list and watch, one entry per kind (a kind may appear once). Default: every mesh kind, unfiltered.</summary>
    public ImmutableArray<KubeWatch> Watches { get; init; } = [.. KubeResource.MeshKinds.Select(r => new KubeWatch(r))];

    /// <summary>
    /// Quiet time after the last change before <see cref="KubernetesApiWatcher.Changed"/> fires, so a burst
    /// (a re-list, a rollout) is translated once.
    /// </summary>
    public TimeSpan CoalesceDelay { get; init; } = TimeSpan.FromMilliseconds(75);

    /// <summary>Longest a change waits for its notification while changes keep coming (a busy cluster never goes quiet).</summary>
    public TimeSpan MaxCoalesceDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>First retry delay after an error; doubled per consecutive failure up to <see cref="MaxBackoff"/>, each jittered.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(800);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a kind whose CRD is not installed is looked for again (jittered up to 1.5x).</summary>
    public TimeSpan MissingKindRetry { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>
    /// Shortest server-side watch timeout; each watch asks for a random value between this and twice this
    /// (client-go's 5-10 minutes), so watches of many agents do not all end together.
    /// </summary>
    public TimeSpan MinWatchTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Items per list page (<c>limit</c>); the rest comes with <c>continue</c>.</summary>
    public int ListPageSize { get; init; } = 500;

    /// <summary>Longest one list page request may take.</summary>
    public TimeSpan ListTimeout { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Largest single object or list page accepted, in bytes; bounds memory against a broken or hostile server.</summary>
    public int MaxMessageBytes { get; init; } = 64 * 1024 * 1024;
}
