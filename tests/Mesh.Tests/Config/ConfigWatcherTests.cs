using System.Collections.Immutable;
using Ambient.Mesh.Config;

namespace Ambient.Mesh.Tests.Config;

public sealed class ConfigWatcherTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly string _dir = Directory.CreateTempSubdirectory("ambient-watch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class Recorder
    {
        private readonly object _lock = new();
        private TaskCompletionSource<MeshConfig> _valid = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource<ImmutableArray<ConfigError>> _invalid = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Calls;

        public void OnValid(MeshConfig c)
        {
            Interlocked.Increment(ref Calls);
            lock (_lock)
            {
                _valid.TrySetResult(c);
            }
        }

        public void OnInvalid(ImmutableArray<ConfigError> e)
        {
            Interlocked.Increment(ref Calls);
            lock (_lock)
            {
                _invalid.TrySetResult(e);
            }
        }

        public Task<MeshConfig> NextValid()
        {
            lock (_lock)
            {
                _valid = new(TaskCreationOptions.RunContinuationsAsynchronously);
                return _valid.Task;
            }
        }

        public Task<ImmutableArray<ConfigError>> NextInvalid()
        {
            lock (_lock)
            {
                _invalid = new(TaskCreationOptions.RunContinuationsAsynchronously);
                return _invalid.Task;
            }
        }
    }

    private (string Path, Recorder Recorder, ConfigWatcher Watcher) Start(string initial, TimeSpan? poll = null, TimeSpan? settle = null)
    {
        string path = Path.Combine(_dir, "config.yaml");
        File.WriteAllText(path, initial);
        var rec = new Recorder();
        var watcher = new ConfigWatcher(path, rec.OnValid, rec.OnInvalid)
        {
            Debounce = TimeSpan.FromMilliseconds(50),
            PollInterval = poll ?? TimeSpan.FromMilliseconds(200),
            SettlePeriod = settle ?? TimeSpan.FromMilliseconds(300),
        };
        watcher.Start();
        return (path, rec, watcher);
    }

    [Fact]
    public async Task ValidEditIsApplied()
    {
        (string path, Recorder rec, ConfigWatcher watcher) = Start("accessLog: text\n");
        using (watcher)
        {
            Task<MeshConfig> next = rec.NextValid();
            File.WriteAllText(path, "accessLog: json\n");
            MeshConfig c = await next.WaitAsync(Timeout);
            Assert.Equal(AccessLogFormat.Json, c.AccessLog);
        }
    }

    [Fact]
    public async Task InvalidEditReportsErrorsThenAFixAppliesAgain()
    {
        (string path, Recorder rec, ConfigWatcher watcher) = Start("accessLog: text\n");
        using (watcher)
        {
            Task<ImmutableArray<ConfigError>> invalid = rec.NextInvalid();
            File.WriteAllText(path, "accessLog: xml\n");
            ImmutableArray<ConfigError> errors = await invalid.WaitAsync(Timeout);
            Assert.Equal("accessLog", Assert.Single(errors).Field);
            Assert.Equal(path, errors[0].File);

            Task<MeshConfig> valid = rec.NextValid();
            File.WriteAllText(path, "accessLog: off\n");
            Assert.Equal(AccessLogFormat.Off, (await valid.WaitAsync(Timeout)).AccessLog);
        }
    }

    [Fact]
    public async Task AtomicRenameLikeEditorsAndConfigMaps()
    {
        (string path, Recorder rec, ConfigWatcher watcher) = Start("mode: shared\n");
        using (watcher)
        {
            Task<MeshConfig> next = rec.NextValid();
            string temp = Path.Combine(_dir, ".config.yaml.swp");
            File.WriteAllText(temp, "mode: inpod\n");
            File.Move(temp, path, overwrite: true);
            Assert.Equal(AgentMode.InPod, (await next.WaitAsync(Timeout)).Mode);
        }
    }

    [Fact]
    public async Task PollingCatchesChangesWithoutEvents()
    {
        // Rewriting the same bytes raises events but must not report; a real change is found by the poll
        // even with a long debounce standing in for a watcher that missed the event.
        string path = Path.Combine(_dir, "config.yaml");
        File.WriteAllText(path, "mode: shared\n");
        var rec = new Recorder();
        using var watcher = new ConfigWatcher(path, rec.OnValid, rec.OnInvalid)
        {
            Debounce = TimeSpan.FromMinutes(5),
            PollInterval = TimeSpan.FromMilliseconds(100),
            SettlePeriod = TimeSpan.FromMilliseconds(300),
        };
        watcher.Start();
        Task<MeshConfig> next = rec.NextValid();
        File.WriteAllText(path, "mode: inpod\n");
        Assert.Equal(AgentMode.InPod, (await next.WaitAsync(Timeout)).Mode);
    }

    [Fact]
    public async Task UnchangedContentIsNotReported()
    {
        (string path, Recorder rec, ConfigWatcher watcher) = Start("mode: shared\n", TimeSpan.FromMilliseconds(50));
        using (watcher)
        {
            File.WriteAllText(path, "mode: shared\n");
            await Task.Delay(400);
            Assert.Equal(0, Volatile.Read(ref rec.Calls));
        }
    }

    [Fact]
    public async Task DeletedFileIsReportedOnceAsInvalid()
    {
        (string path, Recorder rec, ConfigWatcher watcher) = Start("mode: shared\n");
        using (watcher)
        {
            Task<ImmutableArray<ConfigError>> invalid = rec.NextInvalid();
            File.Delete(path);
            Assert.Contains("file not found", Assert.Single(await invalid.WaitAsync(Timeout)).Message);
            await Task.Delay(500); // several polls
            Assert.Equal(1, Volatile.Read(ref rec.Calls));
        }
    }

    /// <summary>
    /// Issue 13: a file rewritten in place in two writes is half-written in between, and the first half is valid YAML.
    /// It is read only once its size and modification time have been stable for the settle period.
    /// </summary>
    [Fact]
    public async Task AFileWrittenInTwoPartsIsReadOnlyOnceItHasSettled()
    {
        (string path, Recorder rec, ConfigWatcher watcher) = Start("accessLog: text\n", settle: TimeSpan.FromSeconds(2));
        using (watcher)
        {
            Task<MeshConfig> next = rec.NextValid();
            using (var file = new FileStream(path, FileMode.Truncate, FileAccess.Write, FileShare.ReadWrite))
            {
                file.Write("mode: inpod\n"u8);
                file.Flush(flushToDisk: true);
                await Task.Delay(400); // well inside the settle period; the watcher sees the first half meanwhile
                file.Write("accessLog: json\n"u8);
            }
            MeshConfig c = await next.WaitAsync(Timeout);
            Assert.Equal(AgentMode.InPod, c.Mode);
            Assert.Equal(AccessLogFormat.Json, c.AccessLog);
            Assert.Equal(1, Volatile.Read(ref rec.Calls));
        }
    }

    /// <summary>Issue 13: truncating a watched config reports it invalid (the caller keeps its last good config).</summary>
    [Fact]
    public async Task ATruncatedFileIsReportedInvalid()
    {
        (string path, Recorder rec, ConfigWatcher watcher) = Start("accessLog: text\n");
        using (watcher)
        {
            Task<ImmutableArray<ConfigError>> invalid = rec.NextInvalid();
            File.WriteAllText(path, "");
            Assert.Contains("the config file is empty", Assert.Single(await invalid.WaitAsync(Timeout)).Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ThrowingHandlerDoesNotStopTheWatcher()
    {
        string path = Path.Combine(_dir, "config.yaml");
        File.WriteAllText(path, "mode: shared\n");
        var seen = new TaskCompletionSource<AgentMode>(TaskCreationOptions.RunContinuationsAsynchronously);
        int calls = 0;
        using var watcher = new ConfigWatcher(path, c =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                throw new InvalidOperationException("handler bug");
            }
            seen.TrySetResult(c.Mode);
        }, _ => { })
        {
            Debounce = TimeSpan.FromMilliseconds(50),
            PollInterval = TimeSpan.FromMilliseconds(200),
            SettlePeriod = TimeSpan.FromMilliseconds(300),
        };
        watcher.Start();
        File.WriteAllText(path, "mode: inpod\n");
        await WaitUntil(() => Volatile.Read(ref calls) >= 1);
        File.WriteAllText(path, "mode: shared\n");
        Assert.Equal(AgentMode.Shared, await seen.Task.WaitAsync(Timeout));
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (!condition())
        {
            await Task.Delay(20, cts.Token);
        }
    }
}
