using System.Collections.Immutable;
using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Sources;
using Ambient.Ztunnel.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Hosting;

/// <summary>
/// The manifest files (<c>--manifests</c>, config key <c>manifests:</c>) as a hosted source: loaded before the agent
/// opens a listener (errors stop the start with every error listed), then watched until the host stops.
/// </summary>
internal sealed class ManifestSourceService(
    ImmutableArray<string> paths,
    AgentSettings settings,
    MeshStore store,
    MeshMetrics metrics,
    ILoggerFactory loggers) : IHostedService, IDisposable
{
    private ManifestFileSource? _source;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var translator = new KubeTranslator(new KubeTranslatorOptions { TrustDomain = settings.TrustDomain });
        _source = new ManifestFileSource(store, paths, translator, loggers.CreateLogger("manifests"));
        var errors = _source.Load();
        if (!errors.IsEmpty)
        {
            throw new InvalidOperationException($"the manifests have {errors.Length} error(s):\n  {string.Join("\n  ", errors)}");
        }
        _source.Reloaded += ok => metrics.ConfigReload(ok);
        _source.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _source?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _source?.Dispose();
}
