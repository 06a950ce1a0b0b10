using System.Collections.Immutable;
using System.Security.Cryptography;
using Ambient.InstallCni.Cli;
using Ambient.InstallCni.Conflist;

namespace Ambient.InstallCni.Install;

/// <summary>The state of the install after one pass.</summary>
internal enum InstallState
{
    /// <summary>Binary and entry were already in place; nothing was written.</summary>
    Unchanged,
    /// <summary>The binary and/or the primary config were (re)written.</summary>
    Written,
    /// <summary>The conf dir holds no CNI config yet (the primary CNI has not installed itself).</summary>
    NoConfig,
    /// <summary>The primary config is one the installer will not edit; it was left untouched.</summary>
    Refused,
}

/// <summary>
/// What one install pass found and did to the config (<see cref="Detail"/> is the sentence for the log) and
/// whether it (re)copied the binary.
/// </summary>
internal sealed record InstallResult(InstallState State, string? ConfigFile, string Detail, bool BinaryCopied);

/// <summary>What an uninstall removed (every change, in order) and what it could not.</summary>
internal sealed record UninstallResult(ImmutableArray<string> Changes, ImmutableArray<string> Problems);

/// <summary>
/// The node-side file operations: put ambient-cni into the CNI bin dir, keep its entry the last plugin of the
/// primary config, take both out again. Every pass reads the directory afresh, so it is correct whatever another
/// CNI did in between; a pass that finds everything in place writes nothing.
/// </summary>
internal sealed class CniInstaller(InstallerOptions options)
{
    /// <summary>The extensions libcni loads, in the order runtimes consider the files: sorted by name.</summary>
    private static readonly string[] ConfigExtensions = [".conf", ".conflist", ".json"];

    private const UnixFileMode Executable =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
        UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    public string InstalledBinary => Path.Combine(options.CniBinDir, PluginEntry.PluginType);

    /// <summary>
    /// Fails with a message naming the directory or file when the mounts or the plugin binary are missing: those
    /// are deployment mistakes no retry fixes.
    /// </summary>
    public void CheckPrerequisites()
    {
        foreach (var (dir, flag) in new[] { (options.CniConfDir, "--cni-conf-dir"), (options.CniBinDir, "--cni-bin-dir") })
        {
            if (!Directory.Exists(dir))
            {
                throw new DirectoryNotFoundException($"{flag} {dir} does not exist; mount the host's directory there (install.yaml does)");
            }
        }

        if (!File.Exists(options.PluginBinary))
        {
            throw new FileNotFoundException($"--plugin-binary {options.PluginBinary} does not exist; the install-cni image carries it next to install-cni", options.PluginBinary);
        }
    }

    /// <summary>One install pass: the binary first (an entry without its binary fails every pod), then the entry.</summary>
    public InstallResult Install()
    {
        bool copied = EnsureBinary();
        InstallResult Result(InstallState state, string? file, string detail) =>
            new(copied && state == InstallState.Unchanged ? InstallState.Written : state, file, detail, copied);

        string? primary = FindPrimary(options.CniConfDir);
        if (primary is null)
        {
            return Result(InstallState.NoConfig, null,
                $"no CNI config (*.conf, *.conflist, *.json) in {options.CniConfDir} yet; waiting for the primary CNI to write one");
        }

        bool isList = IsList(primary);
        byte[]? updated;
        try
        {
            updated = ConflistEditor.Insert(File.ReadAllBytes(primary), isList, options.Entry);
        }
        catch (ConfigFormatException ex)
        {
            return Result(InstallState.Refused, primary, $"{primary} {ex.Message}; left it untouched, will retry when it changes");
        }

        if (updated is null)
        {
            return Result(InstallState.Unchanged, primary, $"ambient-cni is the last plugin of {primary}");
        }

        if (isList)
        {
            AtomicFile.Write(primary, updated);
            return Result(InstallState.Written, primary, $"added ambient-cni as the last plugin of {primary}");
        }

        // A single-plugin config becomes a conflist of the same name; the .conf must go, or it would still sort
        // first. A conflist already there is replaced only when it is our own earlier conversion (the primary CNI
        // has just rewritten its .conf, so that copy is stale); anyone else's file is left alone.
        string conflist = Path.ChangeExtension(primary, ".conflist");
        if (File.Exists(conflist) && !IsOurConversion(conflist))
        {
            return Result(InstallState.Refused, primary,
                $"{primary} is a single-plugin config and {conflist}, where its conflist would go, is another config; left both untouched");
        }

        AtomicFile.Write(conflist, updated, File.GetUnixFileMode(primary));
        File.Delete(primary);
        return Result(InstallState.Written, conflist, $"converted {primary} to {conflist} with ambient-cni as its last plugin");
    }

    private static bool IsOurConversion(string conflist)
    {
        try
        {
            return ConflistEditor.Remove(File.ReadAllBytes(conflist)) is { } without && ConflistEditor.Unwrap(without) is not null;
        }
        catch (ConfigFormatException)
        {
            return false;
        }
    }

    /// <summary>True when the binary is the one this installer carries and the primary config ends with the entry as configured.</summary>
    public (bool Installed, string Detail) Check()
    {
        if (!File.Exists(InstalledBinary))
        {
            return (false, $"{InstalledBinary} is missing");
        }

        if (!SameContent(options.PluginBinary, InstalledBinary))
        {
            return (false, $"{InstalledBinary} differs from {options.PluginBinary}");
        }

        string? primary = FindPrimary(options.CniConfDir);
        if (primary is null)
        {
            return (false, $"no CNI config in {options.CniConfDir}");
        }

        try
        {
            return IsList(primary) && ConflistEditor.Insert(File.ReadAllBytes(primary), isList: true, options.Entry) is null
                ? (true, $"ambient-cni is installed: {InstalledBinary}, last plugin of {primary}")
                : (false, $"{primary} does not end with the ambient-cni entry as configured");
        }
        catch (ConfigFormatException ex)
        {
            return (false, $"{primary} {ex.Message}");
        }
    }

    /// <summary>
    /// Takes the entry out of every CNI config in the conf dir (a converted .conf goes back to what it was), then
    /// deletes the binary: the reverse order of <see cref="Install"/>, so no config ever names a missing plugin.
    /// </summary>
    public UninstallResult Uninstall()
    {
        var changes = ImmutableArray.CreateBuilder<string>();
        var problems = ImmutableArray.CreateBuilder<string>();
        foreach (string file in ConfigFiles(options.CniConfDir).Where(IsList))
        {
            try
            {
                if (ConflistEditor.Remove(File.ReadAllBytes(file)) is not { } without)
                {
                    continue;
                }

                string conf = Path.ChangeExtension(file, ".conf");
                if (ConflistEditor.Unwrap(without) is { } original && !File.Exists(conf))
                {
                    AtomicFile.Write(conf, original, File.GetUnixFileMode(file));
                    File.Delete(file);
                    changes.Add($"restored {conf} (removed ambient-cni from {file}, which the install had converted from it)");
                }
                else
                {
                    AtomicFile.Write(file, without);
                    changes.Add($"removed ambient-cni from {file}");
                }
            }
            catch (ConfigFormatException ex)
            {
                problems.Add($"{file} {ex.Message}; not edited");
            }
            catch (IOException ex)
            {
                problems.Add($"{file}: {ex.Message}");
            }
        }

        try
        {
            if (File.Exists(InstalledBinary))
            {
                File.Delete(InstalledBinary);
                changes.Add($"deleted {InstalledBinary}");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problems.Add($"{InstalledBinary}: {ex.Message}");
        }

        return new UninstallResult(changes.ToImmutable(), problems.ToImmutable());
    }

    /// <summary>The config a runtime uses: the first file with a CNI extension in byte order (libcni sorts names that way).</summary>
    public static string? FindPrimary(string confDir) => ConfigFiles(confDir).FirstOrDefault();

    private static IEnumerable<string> ConfigFiles(string confDir) =>
        Directory.EnumerateFiles(confDir)
            .Where(f => ConfigExtensions.Contains(Path.GetExtension(f), StringComparer.Ordinal))
            .Order(StringComparer.Ordinal);

    private static bool IsList(string file) => Path.GetExtension(file) == ".conflist";

    /// <summary>Copies the binary unless the installed one is byte-identical; true when it wrote.</summary>
    private bool EnsureBinary()
    {
        if (File.Exists(InstalledBinary) && SameContent(options.PluginBinary, InstalledBinary))
        {
            return false;
        }

        AtomicFile.Copy(options.PluginBinary, InstalledBinary, Executable);
        return true;
    }

    private static bool SameContent(string a, string b)
    {
        if (new FileInfo(a).Length != new FileInfo(b).Length)
        {
            return false;
        }

        using var fa = File.OpenRead(a);
        using var fb = File.OpenRead(b);
        return SHA256.HashData(fa).AsSpan().SequenceEqual(SHA256.HashData(fb));
    }
}
