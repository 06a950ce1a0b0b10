using System.Globalization;
using System.Text;

namespace Ambient.Cni;

internal enum LogLevel
{
    Debug,
    Info,
    Warn,
    Error,
    None,
}

internal static class LogLevels
{
    public static bool TryParse(string value, out LogLevel level)
    {
        switch (value.ToLowerInvariant())
        {
            case "debug": level = LogLevel.Debug; return true;
            case "info": level = LogLevel.Info; return true;
            case "warn" or "warning": level = LogLevel.Warn; return true;
            case "error": level = LogLevel.Error; return true;
            case "none" or "off": level = LogLevel.None; return true;
            default: level = LogLevel.Info; return false;
        }
    }

    public static string Name(LogLevel level) => level switch
    {
        LogLevel.Debug => "debug",
        LogLevel.Info => "info",
        LogLevel.Warn => "warn",
        LogLevel.Error => "error",
        _ => "none",
    };
}

/// <summary>
/// Line-oriented log for one short-lived invocation: stderr (the runtime's log) and optionally an appended
/// file, because kubelet and containerd only surface a plugin's stderr when the plugin fails. Stdout is
/// reserved for the CNI result, so nothing here may touch it. A file that cannot be opened is reported on
/// stderr and otherwise ignored: logging must never fail pod start-up.
/// </summary>
internal sealed class PluginLog : IDisposable
{
    // Borrowed (the process's stderr): the caller owns it, so Dispose leaves it open.
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2213", Justification = "borrowed writer, owned by the caller")]
    private readonly TextWriter _stderr;
    private StreamWriter? _file;
    private string _scope = "";

    public PluginLog(TextWriter stderr, LogLevel level = LogLevel.Info)
    {
        _stderr = stderr;
        Level = level;
    }

    public LogLevel Level { get; private set; }

    /// <summary>Applies the config's level and file once stdin has been parsed.</summary>
    public void Configure(LogLevel level, string? file)
    {
        Level = level;
        if (file is null || level == LogLevel.None)
        {
            return;
        }

        try
        {
            var stream = new FileStream(file, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
            _file = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Write(LogLevel.Warn, $"cannot open logFile {file}: {ex.Message}; logging to stderr only");
        }
    }

    /// <summary>Prefix for every later line, e.g. the command and pod, so interleaved invocations can be told apart.</summary>
    public void SetScope(string scope) => _scope = scope;

    public bool IsEnabled(LogLevel level) => level >= Level && level != LogLevel.None;

    public void Debug(string message) => Write(LogLevel.Debug, message);
    public void Info(string message) => Write(LogLevel.Info, message);
    public void Warn(string message) => Write(LogLevel.Warn, message);
    public void Error(string message) => Write(LogLevel.Error, message);

    private void Write(LogLevel level, string message)
    {
        if (!IsEnabled(level))
        {
            return;
        }

        string line = string.Create(
            CultureInfo.InvariantCulture,
            $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {LogLevels.Name(level)} ambient-cni[{Environment.ProcessId}] {_scope}{message}");
        try
        {
            _stderr.WriteLine(line);
            _file?.WriteLine(line);
        }
        catch (IOException)
        {
            // A closed stderr or a full disk must not turn a successful ADD into a failure.
        }
    }

    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
    }
}
