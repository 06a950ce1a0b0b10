namespace Ambient.InstallCni.Install;

/// <summary>
/// Replaces files so that a reader (a container runtime loading its CNI config, exec'ing a plugin) sees the old
/// file or the new one, never a partial one: write a temporary file in the same directory, fsync, rename over.
/// </summary>
internal static class AtomicFile
{
    private const UnixFileMode ReadableByAll = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="path"/> with <paramref name="mode"/>, by default the mode
    /// of the file it replaces.
    /// </summary>
    public static void Write(string path, byte[] content, UnixFileMode? mode = null) =>
        Replace(path, mode ?? (File.Exists(path) ? File.GetUnixFileMode(path) : ReadableByAll), fs => fs.Write(content));

    /// <summary>Copies <paramref name="source"/> over <paramref name="path"/> (the plugin binary).</summary>
    public static void Copy(string source, string path, UnixFileMode mode) =>
        Replace(path, mode, fs =>
        {
            using var input = File.OpenRead(source);
            input.CopyTo(fs);
        });

    private static void Replace(string path, UnixFileMode mode, Action<FileStream> fill)
    {
        // Hidden and without a CNI extension, so a runtime scanning the directory never loads it; the pid keeps
        // two installers on one node (old and new pod during a rollout) off each other's temporary file.
        string tmp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.install-cni-{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = mode }))
            {
                fill(fs);
                fs.Flush(flushToDisk: true);
            }

            // UnixCreateMode is filtered by the umask (and ignored for an existing file); set it for certain.
            File.SetUnixFileMode(tmp, mode);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
