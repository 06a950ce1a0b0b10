using System.Threading.Channels;
using Ambient.InstallCni.Cli;
using Ambient.InstallCni.Conflist;
using Ambient.InstallCni.Install;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ambient.InstallCni.Lifecycle;

/// <summary>
/// The long-running installer: installs, then re-installs whenever a file in the CNI conf or bin dir changes
/// (another CNI rewriting its config drops our entry; a node clean-up deletes the binary), plus a periodic resync
/// in case inotify missed an event. At shutdown the <see cref="ExitPolicy"/> decides between uninstall and keep.
/// </summary>
internal sealed class InstallerService(InstallerOptions options, CniInstaller installer, ExitPolicy exitPolicy, DaemonSetProbe? probe, ILogger<InstallerService> log)
    : BackgroundService
{
    /// <summary>Events come in bursts (a CNI writes, chmods, renames); one pass after the burst sees the end state.</summary>
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(100);

    private readonly Channel<bool> _changed = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private InstallResult? _last;

    /// <summary>Set when the shutdown decision has been carried out: true when it uninstalled cleanly.</summary>
    public bool? UninstallClean { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Log.Starting(log, options.CniConfDir, options.CniBinDir, options.OnExit.ToString().ToLowerInvariant(), options.Entry.Render(null));
        using var confWatch = Watch(options.CniConfDir, "*");
        using var binWatch = Watch(options.CniBinDir, PluginEntry.PluginType);
        Log.Watching(log, options.CniConfDir, options.CniBinDir, options.Resync);
        Pass();

        // After the first pass, so a slow API server never delays the install.
        if (probe is not null)
        {
            var first = await probe.GetAsync(stoppingToken).ConfigureAwait(false);
            exitPolicy.StartupProbeSucceeded = first.State == DaemonSetState.Present;
            if (exitPolicy.StartupProbeSucceeded)
            {
                Log.StartupProbe(log, first.Detail);
            }
            else
            {
                Log.StartupProbeFailed(log, first.Detail);
            }
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            if (options.Resync > TimeSpan.Zero)
            {
                wait.CancelAfter(options.Resync);
            }

            try
            {
                await _changed.Reader.ReadAsync(wait.Token).ConfigureAwait(false);
                await Task.Delay(Debounce, stoppingToken).ConfigureAwait(false);
                _changed.Reader.TryRead(out _);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                // Resync period elapsed: check anyway.
            }
            catch (OperationCanceledException)
            {
                break;
            }

            Pass();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        var verdict = await exitPolicy.DecideAsync(cancellationToken).ConfigureAwait(false);
        if (!verdict.Uninstall)
        {
            Log.ExitKeep(log, verdict.Reason);
            return;
        }

        Log.ExitUninstall(log, verdict.Reason);
        var result = installer.Uninstall();
        foreach (string change in result.Changes)
        {
            Log.Uninstalled(log, change);
        }

        foreach (string problem in result.Problems)
        {
            Log.UninstallProblem(log, problem);
        }

        UninstallClean = result.Problems.IsEmpty;
    }

    /// <summary>One install pass; logs what changed, or a state that differs from the last pass's.</summary>
    private void Pass()
    {
        InstallResult result;
        try
        {
            result = installer.Install();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.InstallFailed(log, ex.Message);
            _last = null;
            return;
        }

        bool repeat = _last == result;
        _last = result;
        if (result.BinaryCopied)
        {
            Log.BinaryCopied(log, installer.InstalledBinary, options.PluginBinary);
        }

        switch (result.State)
        {
            case InstallState.Written:
                Log.Installed(log, result.Detail);
                break;
            case InstallState.Unchanged:
                Log.InPlace(log, result.Detail);
                break;
            case InstallState.NoConfig when !repeat:
                Log.NoConfig(log, result.Detail);
                break;
            case InstallState.Refused when !repeat:
                Log.Refused(log, result.Detail);
                break;
        }
    }

    private FileSystemWatcher Watch(string dir, string filter)
    {
        var watcher = new FileSystemWatcher(dir, filter)
        {
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.Attributes,
            IncludeSubdirectories = false,
        };
        FileSystemEventHandler changed = (_, e) =>
        {
            Log.FileEvent(log, e.ChangeType, e.FullPath);
            _changed.Writer.TryWrite(true);
        };
        watcher.Created += changed;
        watcher.Changed += changed;
        watcher.Deleted += changed;
        watcher.Renamed += (_, e) => changed(watcher, e);
        watcher.Error += (_, e) =>
        {
            Log.WatchError(log, e.GetException().Message);
            _changed.Writer.TryWrite(true);
        };
        watcher.EnableRaisingEvents = true;
        return watcher;
    }
}
