using System.Net;
using Ambient.Mesh.Config;
using Ambient.Mesh.Hbone;
using Ambient.Mesh.Identity;
using Ambient.Mesh.Kubernetes;
using Ambient.Mesh.Kubernetes.Api;
using Ambient.Mesh.Logging;
using Ambient.Mesh.Sources;
using Ambient.Waypoint.Admin;
using Ambient.Waypoint.Governance;
using Ambient.Waypoint.Hbone;
using Ambient.Waypoint.Proxy;
using Ambient.Waypoint.Routing;
using Ambient.Waypoint.Telemetry;
using Ambient.Waypoint.Telemetry.Tracing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.Waypoint.Hosting;

/// <summary>The bound listeners, known after start (a port 0 in the config becomes the kernel's choice).</summary>
internal sealed class WaypointEndpoints
{
    internal HboneEndPoint? HboneListener { get; set; }
    internal ListenOptions? AdminListener { get; set; }
    internal ListenOptions? MetricsListener { get; set; }
    internal ListenOptions? ReadinessListener { get; set; }

    public IPEndPoint Hbone => HboneListener?.Bound ?? throw new InvalidOperationException("not started");
    public IPEndPoint Admin => AdminListener!.IPEndPoint!;
    public IPEndPoint Metrics => MetricsListener!.IPEndPoint!;
    public IPEndPoint Readiness => ReadinessListener!.IPEndPoint!;
}

/// <summary>
/// Composes the waypoint on ASP.NET Core's host: Kestrel with two transports (HBONE tunnels on 15008 through
/// <see cref="HboneTransport"/>; plain sockets for admin 15000, metrics 15020 and readiness 15021), the mesh store and
/// its sources as hosted services, YARP's forwarder, and one request delegate that sends tunnel requests to
/// <see cref="ProxyHandler"/> and the rest to the admin endpoints. SIGTERM stops the host: Kestrel stops accepting,
/// HBONE clients get GOAWAY, requests in flight finish within the drain timeout.
/// </summary>
internal static class WaypointHost
{
    public static WebApplication Build(WaypointOptions options, MeshConfig config, Action<ILoggingBuilder>? logging = null)
    {
        // A bare LF ends a line for Kestrel unless this is set (RFC 9112 2.2 allows either); a proxy that splits lines
        // differently from the server behind it invites request smuggling, so the waypoint accepts only CRLF (400).
        AppContext.SetSwitch("Microsoft.AspNetCore.Server.Kestrel.DisableHttp1LineFeedTerminators", true);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "waypoint", Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(options.LogLevel);
        // Kestrel reports each malformed request (bad framing, oversized headers) at Debug; the refusal is answered
        // (400/431) and counted, so it needs no log line of its own at Information.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        // YARP's forwarder logs two Information lines per request ("Proxying to ...", "Received HTTP/1.1 response");
        // the access log is the per-request record, and at 1,000 req/s those lines cost the process a large share
        // of its CPU (node-bench --scenario l7). Its warnings and errors still show.
        builder.Logging.AddFilter("Yarp", LogLevel.Warning);
        builder.Logging.AddAmbientConsole(logging);

        var listeners = config.Listeners;
        var services = builder.Services;
        services.Configure<HostOptions>(o => o.ShutdownTimeout = config.DrainTimeout + TimeSpan.FromSeconds(5));
        services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        var address = listeners.Hbone.Address;
        var identity = new WaypointIdentity(options.GatewayNamespace, options.GatewayName, config.TrustDomain, address);
        string stateDir = config.StateDir ?? options.StateDir ?? WaypointOptions.DefaultStateDir;
        services.AddSingleton(options);
        services.AddSingleton(config);
        services.AddSingleton(identity);
        services.AddSingleton<WaypointMetrics>();
        services.AddSingleton(sp => new WaypointTracing(options.Tracing ?? new TracingOptions(), identity, sp.GetRequiredService<MeshStore>()));
        services.AddSingleton(new AccessLog(options.AccessLogWriter ?? Console.Out, options.AccessLog ?? config.AccessLog));
        services.AddSingleton(sp => new MeshStore(sp.GetRequiredService<ILogger<MeshStore>>()));
        services.AddSingleton<ICertificateIssuer>(_ => CreateIssuer(options.ControlPlane, identity, config, stateDir));
        services.AddSingleton(sp => new CertificateManager(
            sp.GetRequiredService<ICertificateIssuer>(), config.CertificateLifetime, TimeProvider.System, sp.GetRequiredService<ILoggerFactory>().CreateLogger("identity")));
        services.AddSingleton(sp => new HbonePool(sp.GetRequiredService<CertificateManager>(), new HbonePoolOptions(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("hbone")));
        services.AddSingleton<TunnelAdmission>();
        services.AddSingleton<HboneTransport>();
        services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<HboneTransport>());
        services.AddSingleton<UpstreamConnector>();
        services.AddSingleton<TcpProxy>();
        services.AddSingleton<EndpointPicker>();
        services.AddSingleton(sp => new GovernanceState(TimeProvider.System));
        services.AddHostedService<OutlierSweeper>();
        services.AddSingleton<ProxyHandler>();
        services.AddSingleton<WaypointEndpoints>();
        services.AddHttpForwarder();

        if (options.ControlPlane?.CaAddress is { } caAddress)
        {
            services.AddHostedService(sp => new IstioCaReadiness(
                caAddress, identity.Id, sp.GetRequiredService<CertificateManager>(), sp.GetRequiredService<MeshStore>(),
                options.CaRetry ?? Mesh.ControlPlane.Backoff.Istio, sp.GetRequiredService<ILoggerFactory>().CreateLogger("identity")));
        }
        services.AddSingleton<MeshSourcesService>();
        services.AddHostedService(sp => sp.GetRequiredService<MeshSourcesService>());
        if (options.Kubernetes is { } kube)
        {
            services.AddSingleton(sp => new KubernetesSource(
                sp.GetRequiredService<MeshStore>(),
                new KubernetesApiWatcher(kube, sp.GetRequiredService<ILoggerFactory>()),
                new KubeTranslator(new KubeTranslatorOptions { TrustDomain = config.TrustDomain }),
                sp.GetRequiredService<ILoggerFactory>().CreateLogger("kubernetes")));
            services.AddHostedService(sp => sp.GetRequiredService<KubernetesSource>());
        }

        builder.WebHost.ConfigureKestrel((context, k) =>
        {
            var endpoints = k.ApplicationServices.GetRequiredService<WaypointEndpoints>();
            k.AddServerHeader = false;
            // HTTP/1.1 and HTTP/2 with prior knowledge (h2c) inside the tunnels: the transport sorts them by preface.
            var hbone = new HboneEndPoint(listeners.Hbone, http2: false);
            endpoints.HboneListener = hbone;
            k.Listen(hbone, l => l.Protocols = HttpProtocols.Http1);
            k.Listen(new HboneEndPoint(listeners.Hbone, http2: true), l => l.Protocols = HttpProtocols.Http2);
            k.Listen(listeners.Admin, l => endpoints.AdminListener = l);
            k.Listen(listeners.Metrics, l => endpoints.MetricsListener = l);
            k.Listen(listeners.Readiness, l => endpoints.ReadinessListener = l);
        });

        var app = builder.Build();
        var proxy = app.Services.GetRequiredService<ProxyHandler>();
        app.Services.GetRequiredService<WaypointMetrics>().AddCollector(app.Services.GetRequiredService<GovernanceState>().Render);
        app.Services.GetRequiredService<WaypointMetrics>().AddCollector(app.Services.GetRequiredService<WaypointTracing>().Render);
        var admin = new AdminEndpoints(
            app.Services.GetRequiredService<MeshStore>(),
            identity,
            app.Services.GetRequiredService<WaypointMetrics>(),
            app.Services.GetRequiredService<WaypointEndpoints>(),
            app.Services.GetRequiredService<IHostApplicationLifetime>());
        app.Run(context => context.Features.Get<TunnelInfo>() is { } tunnel ? proxy.HandleAsync(context, tunnel) : admin.HandleAsync(context));
        return app;
    }

    /// <summary>
    /// Istio's CA when a CA address is set (as the agent: no waypoint holds a CA key; the waypoint asks for its own
    /// identity, so nothing is impersonated); otherwise the built-in CA of the state directory (local mode).
    /// </summary>
    private static ICertificateIssuer CreateIssuer(Mesh.ControlPlane.ControlPlaneOptions? cp, WaypointIdentity identity, MeshConfig config, string stateDir)
    {
        if (cp?.CaAddress is { } ca)
        {
            return new IstioCaClient(new Mesh.ControlPlane.ControlPlaneConnection(ca, cp.CaRootCert, cp.TokenFile, cp.ClusterId), identity.Id.ToString());
        }
        return CertificateAuthority.LoadOrCreate(config.CaCertFile, config.CaKeyFile, stateDir, config.TrustDomain);
    }
}
