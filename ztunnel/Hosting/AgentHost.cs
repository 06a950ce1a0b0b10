using Ambient.Mesh.Config;
using Ambient.Mesh.ControlPlane;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.Api;
using Ambient.Mesh.Logging;
using Ambient.Mesh.Sources;
using Ambient.Mesh.Sources.Mcp;
using Ambient.Mesh.Sources.Xds;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Ztunnel.Hosting;

/// <summary>
/// Composes the agent on the generic host: one <see cref="MeshStore"/>, a hosted service per mesh source (manifest
/// files; the Kubernetes API, Istio xDS when configured), then the <see cref="AgentService"/>. Services start in that order and
/// stop in reverse, so the proxy drains before its sources go away. SIGTERM/SIGINT stop the host
/// (<see cref="AgentLifetime"/>); the host waits for the drain (drainTimeout plus a margin).
/// </summary>
internal static class AgentHost
{
    public static IHost Build(AgentOptions options, MeshConfig config, LogLevelSwitch logLevel, Action<ILoggingBuilder>? logging = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "ztunnel" });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddFilter((_, level) => level >= logLevel.Level);
        // A start-up failure is reported once, as one line, by Program ("ztunnel could not start: ..."); the host's
        // own report of it is the same exception with a stack trace.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        builder.Logging.AddAmbientConsole(logging);

        var settings = config.Settings;
        var services = builder.Services;
        services.Configure<HostOptions>(o =>
        {
            o.ShutdownTimeout = settings.DrainTimeout + TimeSpan.FromSeconds(10);
            o.ServicesStartConcurrently = false;
            o.ServicesStopConcurrently = false;
        });
        services.AddSingleton(options);
        services.AddSingleton(config);
        services.AddSingleton(settings);
        services.AddSingleton(logLevel);
        services.AddSingleton(sp => new MeshStore(sp.GetRequiredService<ILogger<MeshStore>>()));
        services.AddSingleton(sp => new MeshMetrics { Store = sp.GetRequiredService<MeshStore>() });
        services.AddSingleton<AgentLifetime>();
        services.AddSingleton<IHostLifetime>(sp => sp.GetRequiredService<AgentLifetime>());

        var manifests = settings.Manifests.AddRange(options.Manifests);
        if (!manifests.IsEmpty)
        {
            services.AddSingleton(sp => new ManifestSourceService(
                manifests, settings, sp.GetRequiredService<MeshStore>(), sp.GetRequiredService<MeshMetrics>(), sp.GetRequiredService<ILoggerFactory>()));
            services.AddHostedService(sp => sp.GetRequiredService<ManifestSourceService>());
        }

        if (options.Kubernetes is { } kube)
        {
            services.AddSingleton(sp => new KubernetesSource(
                sp.GetRequiredService<MeshStore>(),
                new KubernetesApiWatcher(kube, sp.GetRequiredService<ILoggerFactory>()),
                new KubeTranslator(new KubeTranslatorOptions { TrustDomain = settings.TrustDomain }),
                sp.GetRequiredService<ILoggerFactory>().CreateLogger("kubernetes")));
            services.AddHostedService(sp => sp.GetRequiredService<KubernetesSource>());
        }

        if (options.ControlPlane is { XdsAddress: { } xds } cp)
        {
            services.AddSingleton(sp => new XdsSource(
                sp.GetRequiredService<MeshStore>(),
                cp,
                new ControlPlaneConnection(xds, cp.XdsRootCert, cp.TokenFile, cp.ClusterId),
                sp.GetRequiredService<ILoggerFactory>().CreateLogger("xds"))
            {
                Backoff = options.ControlPlaneBackoff ?? Backoff.Istio,
            });
            services.AddHostedService(sp => sp.GetRequiredService<XdsSource>());
        }

        // One source per MCP registry. Registered as IHostedService one by one: AddHostedService keeps one per type.
        foreach (var registry in options.Mcp)
        {
            var identity = options.ControlPlane;
            services.AddSingleton<IHostedService>(sp => new McpSource(
                sp.GetRequiredService<MeshStore>(),
                registry,
                new ControlPlaneConnection(registry.Address, registry.RootCert, registry.TokenFile, identity?.ClusterId ?? ControlPlaneOptions.DefaultClusterId),
                new KubeTranslator(new KubeTranslatorOptions { TrustDomain = settings.TrustDomain, ClusterId = identity?.ClusterId ?? ControlPlaneOptions.DefaultClusterId }),
                sp.GetRequiredService<ILoggerFactory>().CreateLogger("mcp"),
                identity)
            {
                Backoff = options.ControlPlaneBackoff ?? Backoff.Istio,
            });
        }

        services.AddSingleton<AgentService>();
        services.AddHostedService(sp => sp.GetRequiredService<AgentService>());
        return builder.Build();
    }
}
