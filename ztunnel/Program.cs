using Ambient.Mesh.Config;
using Ambient.Ztunnel;
using Ambient.Ztunnel.Admin;
using Ambient.Ztunnel.Cli;
using Ambient.Ztunnel.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// Socket continuations run on the epoll threads instead of hopping to the thread pool: at interactive rates a
// request then crosses one thread per agent instead of four (perf/node-bench/findings.md). Every I/O path in the
// agent is asynchronous, which is what makes this safe. The socket engine reads the variable once, when the first
// socket is created, so it must be set before anything else; DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0
// in the environment turns it off.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
{
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
}

var cl = CommandLine.Parse(args);
if (cl.Error is not null)
{
    Console.Error.WriteLine($"ztunnel: {cl.Error}\nRun 'ztunnel --help' for usage.");
    return 2;
}
if (cl.Help)
{
    Console.WriteLine(CommandLine.Usage);
    return 0;
}
if (cl.Version)
{
    Console.WriteLine($"ztunnel (Ambient) {typeof(Agent).Assembly.GetName().Version?.ToString(3)}");
    return 0;
}

ConfigLoadResult loaded;
if (cl.ConfigPath is { } path)
{
    loaded = ConfigLoader.LoadFile(path);
}
else
{
    using var resource = typeof(Agent).Assembly.GetManifestResourceStream("default-config.yaml")!;
    using var reader = new StreamReader(resource);
    loaded = ConfigLoader.Parse(reader.ReadToEnd(), "(embedded default config)");
}
if (!loaded.Ok)
{
    Console.Error.WriteLine($"ztunnel: the config has {loaded.Errors.Length} error(s):");
    foreach (var e in loaded.Errors)
    {
        Console.Error.WriteLine($"  {e}");
    }
    return 1;
}
if (cl.Validate)
{
    var c = loaded.Config!;
    Console.WriteLine($"{cl.ConfigPath ?? "(embedded default config)"}: valid ({c.Workloads.Length} workloads, {c.Services.Length} services, {c.Policies.Length} policies)");
    var manifestPaths = c.Manifests.AddRange(cl.Manifests);
    if (!manifestPaths.IsEmpty)
    {
        // The same reading and translation the running agent does, so what validates here loads there.
        var read = Ambient.Mesh.Kubernetes.ManifestReader.Read(manifestPaths);
        var errors = read.Errors;
        var warnings = read.Warnings;
        Ambient.Mesh.Kubernetes.TranslationResult? translated = null;
        if (errors.IsEmpty)
        {
            translated = new Ambient.Mesh.Kubernetes.KubeTranslator(new() { TrustDomain = c.TrustDomain }).Translate(read.Objects);
            errors = translated.Errors;
            warnings = warnings.AddRange(translated.Warnings);
        }
        foreach (var w in warnings)
        {
            Console.Error.WriteLine($"  warning: {w}");
        }
        if (!errors.IsEmpty)
        {
            Console.Error.WriteLine($"ztunnel: the manifests have {errors.Length} error(s):");
            foreach (var e in errors)
            {
                Console.Error.WriteLine($"  {e}");
            }
            return 1;
        }
        var r = translated!.Resources;
        Console.WriteLine($"{string.Join(", ", manifestPaths)}: valid ({read.Objects.Length} objects -> {r.Workloads.Length} workloads, {r.Services.Length} services, {r.Policies.Length} policies, {r.Objects.Length} other mesh objects)");
    }
    return 0;
}

Ambient.Mesh.ControlPlane.ControlPlaneOptions? controlPlane;
System.Collections.Immutable.ImmutableArray<Ambient.Mesh.Sources.Mcp.McpRegistryOptions> mcp;
try
{
    controlPlane = cl.ControlPlane(Ambient.Mesh.ControlPlane.ControlPlaneOptions.ProcessEnvironment());
    mcp = cl.McpRegistries(loaded.Config!.Mcp);
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"ztunnel: {ex.Message}\nRun 'ztunnel --help' for usage.");
    return 2;
}
var config = loaded.Config!;
if (controlPlane?.TrustDomain is { } trustDomain)
{
    // TRUST_DOMAIN, as Istio's ztunnel reads it, names the identities this agent asks the CA for.
    config = config with { TrustDomain = trustDomain };
}

var logLevel = new LogLevelSwitch(cl.LogLevel);
var options = new AgentOptions
{
    ConfigPath = cl.ConfigPath,
    NodeName = cl.NodeName,
    StateDir = cl.StateDir,
    Manifests = cl.Manifests,
    ControlPlane = controlPlane,
    Mcp = mcp,
    Kubernetes = cl.Kubernetes ? new Ambient.Mesh.Kubernetes.Api.KubernetesApiOptions { KubeconfigPath = cl.Kubeconfig } : null,
    AccessLog = cl.AccessLog,
    LogLevel = cl.LogLevel,
};
using var host = AgentHost.Build(options, config, logLevel);
var log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ztunnel");
try
{
    // Starts the sources, then the agent (in registration order).
    await host.StartAsync();
}
catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
{
    Ambient.Ztunnel.AgentLog.CouldNotStart(log, ex.Message);
    await host.StopAsync();
    return 1;
}
// Returns after SIGTERM/SIGINT or /quitquitquit, once every hosted service stopped (the agent drained).
await host.WaitForShutdownAsync();
return 0;
