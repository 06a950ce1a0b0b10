using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;

namespace Ambient.Ztunnel.Hosting;

/// <summary>
/// The host's lifetime: SIGTERM and SIGINT stop the host (the agent then drains), and the signal's name is kept so the
/// drain log says why ("draining (SIGTERM)"). Replaces the console lifetime, which prints start-up banners and does
/// not say which signal arrived.
/// </summary>
internal sealed class AgentLifetime(IHostApplicationLifetime lifetime) : IHostLifetime, IDisposable
{
    private PosixSignalRegistration? _term;
    private PosixSignalRegistration? _int;

    /// <summary>Why the host is stopping: the signal, or what asked through the admin API.</summary>
    public string StopReason { get; private set; } = "shutdown";

    public Task WaitForStartAsync(CancellationToken cancellationToken)
    {
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => Stop(c, "SIGTERM"));
        _int = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => Stop(c, "SIGINT"));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Stops the host for a reason other than a signal (POST /quitquitquit).</summary>
    public void RequestStop(string reason)
    {
        StopReason = reason;
        lifetime.StopApplication();
    }

    private void Stop(PosixSignalContext context, string reason)
    {
        context.Cancel = true; // the host drains and exits on its own
        RequestStop(reason);
    }

    public void Dispose()
    {
        _term?.Dispose();
        _int?.Dispose();
    }
}
