using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Sources;
using Ambient.Waypoint.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Hosting;

/// <summary>
/// Feeds the waypoint's <see cref="MeshStore"/> from the config file's own workloads, services and policies and from
/// manifest files (watched: a valid edit applies live, an invalid one is reported and the last good state stays).
/// The Kubernetes source, when configured, is a hosted service of its own.
/// </summary>
internal sealed class MeshSourcesService(
    MeshConfig config,
    WaypointOptions options,
    MeshStore store,
    WaypointMetrics metrics,
    ILoggerFactory loggers) : IHostedService, IDisposable
{
    /// <summary>As ztunnel's: the config file's resources above manifests (40) and the Kubernetes API (30).</summary>
    public const int ConfigSourcePrecedence = 50;

    private ManifestFileSource? _manifests;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var own = store.AddSource(options.ConfigPath is { } p ? $"config:{p}" : "config:(none)", ConfigSourcePrecedence);
        own.Replace(config.Resources);
        own.MarkSynced();
        ImmutableArray<string> paths = config.Manifests.AddRange(options.Manifests);
        if (!paths.IsEmpty)
        {
            var translator = new KubeTranslator(new KubeTranslatorOptions { TrustDomain = config.TrustDomain });
            _manifests = new ManifestFileSource(store, paths, translator, loggers.CreateLogger("manifests"));
            var errors = _manifests.Load();
            if (!errors.IsEmpty)
            {
                throw new InvalidOperationException($"the manifests have {errors.Length} error(s):\n  {string.Join("\n  ", errors)}");
            }
            _manifests.Reloaded += ok => metrics.ConfigReload(ok);
            _manifests.Start();
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _manifests?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _manifests?.Dispose();
}
