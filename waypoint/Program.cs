using Ambient.Mesh.Config;
using Ambient.Mesh.Kubernetes;
using Ambient.Waypoint.Cli;
using Ambient.Waypoint.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// Socket continuations run on the epoll threads instead of hopping to the thread pool, as in the agent: a request then
// crosses the waypoint on one thread from the HBONE socket it arrived on to the one it leaves by, instead of waking
// pool workers at each step (perf/results/node-bench-l7-profile.md). Every I/O path here is asynchronous. The
// socket engine reads the variable once, when the first socket is created, so it is set before anything else;
// DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 in the environment turns it off.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
{
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
}

if (args.Length > 0 && args[0] == "generate")
{
    return GenerateCommand.Run(args[1..], Console.Out, Console.Error, WaypointVersion());
}

var cl = CommandLine.Parse(args);
if (cl.Help)
{
    Console.WriteLine(CommandLine.Usage);
    return 0;
}
if (cl.Error is not null)
{
    Console.Error.WriteLine($"waypoint: {cl.Error}\nRun 'waypoint --help' for usage.");
    return 2;
}
if (cl.Version)
{
    Console.WriteLine($"waypoint (Ambient) {WaypointVersion()}");
    return 0;
}

Ambient.Mesh.ControlPlane.ControlPlaneOptions? controlPlane;
try
{
    controlPlane = cl.ControlPlane(Ambient.Mesh.ControlPlane.ControlPlaneOptions.ProcessEnvironment());
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"waypoint: {ex.Message}\nRun 'waypoint --help' for usage.");
    return 2;
}

var loaded = cl.ConfigPath is { } path ? ConfigLoader.LoadFile(path) : ConfigLoader.Parse("{}", "(defaults)");
if (!loaded.Ok)
{
    Console.Error.WriteLine($"waypoint: the config has {loaded.Errors.Length} error(s):");
    foreach (var e in loaded.Errors)
    {
        Console.Error.WriteLine($"  {e}");
    }
    return 1;
}
var config = loaded.Config!;
if (controlPlane?.TrustDomain is { } trustDomain)
{
    // TRUST_DOMAIN, as Istio's ztunnel reads it, names the identity the waypoint asks the CA for.
    config = config with { TrustDomain = trustDomain };
}
if (cl.Validate)
{
    var manifests = config.Manifests.AddRange(cl.Manifests);
    var read = ManifestReader.Read(manifests);
    var errors = read.Errors;
    if (errors.IsEmpty)
    {
        errors = new KubeTranslator(new() { TrustDomain = config.TrustDomain }).Translate(read.Objects).Errors;
    }
    foreach (var e in errors)
    {
        Console.Error.WriteLine($"  {e}");
    }
    if (!errors.IsEmpty)
    {
        Console.Error.WriteLine($"waypoint: {errors.Length} error(s)");
        return 1;
    }
    Console.WriteLine($"{cl.ConfigPath ?? "(defaults)"}{(manifests.IsEmpty ? "" : " + " + string.Join(", ", manifests))}: valid");
    return 0;
}

Ambient.Waypoint.Telemetry.Tracing.TracingOptions tracing;
try
{
    tracing = Ambient.Waypoint.Telemetry.Tracing.TracingOptions.FromEnvironment(Environment.GetEnvironmentVariables());
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"waypoint: {ex.Message}");
    return 2;
}
var options = new WaypointOptions
{
    GatewayNamespace = cl.GatewayNamespace!,
    GatewayName = cl.GatewayName!,
    ConfigPath = cl.ConfigPath,
    Manifests = cl.Manifests,
    Kubernetes = cl.Kubernetes ? new Ambient.Mesh.Kubernetes.Api.KubernetesApiOptions { KubeconfigPath = cl.Kubeconfig } : null,
    StateDir = cl.StateDir,
    ControlPlane = controlPlane,
    AccessLog = cl.AccessLog,
    LogLevel = cl.LogLevel,
    Tracing = tracing,
};
await using var app = WaypointHost.Build(options, config);
var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("waypoint");
try
{
    await app.StartAsync();
}
catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
{
    WaypointLog.CouldNotStart(log, ex.Message);
    return 1;
}
var endpoints = app.Services.GetRequiredService<WaypointEndpoints>();
WaypointLog.Ready(log,
    options.GatewayNamespace, options.GatewayName, endpoints.Hbone, endpoints.Admin, endpoints.Metrics, endpoints.Readiness);
// Returns after SIGTERM/SIGINT or POST /quitquitquit, once Kestrel drained.
await app.WaitForShutdownAsync();
return 0;

static string WaypointVersion() => typeof(WaypointHost).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
