using Ambient.InstallCni;
using Ambient.InstallCni.Cli;
using Ambient.InstallCni.Install;
using Ambient.InstallCni.Lifecycle;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var (options, help, error) = InstallerOptions.Parse(args, Environment.GetEnvironmentVariable);
if (help)
{
    Console.WriteLine(InstallerOptions.Usage);
    return 0;
}

if (error is not null || options is null)
{
    Console.Error.WriteLine($"install-cni: {error}\nRun 'install-cni --help' for usage.");
    return 2;
}

var installer = new CniInstaller(options);
try
{
    installer.CheckPrerequisites();
}
catch (IOException ex)
{
    Console.Error.WriteLine($"install-cni: {ex.Message}");
    return 1;
}

switch (options.Command)
{
    case InstallerCommand.Install:
    {
        var result = installer.Install();
        if (result.BinaryCopied)
        {
            Console.WriteLine($"install-cni: copied {installer.InstalledBinary} from {options.PluginBinary}");
        }

        var writer = result.State is InstallState.Written or InstallState.Unchanged ? Console.Out : Console.Error;
        writer.WriteLine($"install-cni: {result.Detail}");
        return writer == Console.Out ? 0 : 1;
    }

    case InstallerCommand.Uninstall:
    {
        var result = installer.Uninstall();
        foreach (string change in result.Changes)
        {
            Console.WriteLine($"install-cni: {change}");
        }

        foreach (string problem in result.Problems)
        {
            Console.Error.WriteLine($"install-cni: {problem}");
        }

        if (result.Changes.IsEmpty && result.Problems.IsEmpty)
        {
            Console.WriteLine("install-cni: ambient-cni was not installed; nothing to do");
        }

        return result.Problems.IsEmpty ? 0 : 1;
    }

    case InstallerCommand.Check:
    {
        var (installed, detail) = installer.Check();
        (installed ? Console.Out : Console.Error).WriteLine($"install-cni: {detail}");
        return installed ? 0 : 1;
    }
}

var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { Args = args });
builder.Logging.SetMinimumLevel(options.LogLevel).AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
    o.UseUtcTimestamp = true;
});
builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
// The uninstall decision may ask the API server (3 tries); the pod's grace period (install.yaml) is longer.
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
using var probe = options.OnExit == ExitAction.Auto ? new DaemonSetProbe(options) : null;
builder.Services.AddSingleton(sp => new InstallerService(
    options, installer, new ExitPolicy(options, probe), probe, sp.GetRequiredService<ILogger<InstallerService>>()));
builder.Services.AddHostedService(sp => sp.GetRequiredService<InstallerService>());

using var host = builder.Build();
var service = host.Services.GetRequiredService<InstallerService>();
await host.RunAsync();
return service.UninstallClean == false ? 1 : 0;
