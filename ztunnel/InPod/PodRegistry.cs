using System.Text.Json;

namespace Ambient.Ztunnel.InPod;

/// <summary>
/// The pods this agent captured, persisted as JSON (written atomically) so that a restarted agent re-adopts every
/// pod without the pods being re-created: their rules are checked and their listeners reopened.
/// </summary>
internal sealed class PodRegistry(string path)
{
    public string Path { get; } = path;

    public List<CapturedPod> Load()
    {
        try
        {
            if (!File.Exists(Path))
            {
                return [];
            }
            return JsonSerializer.Deserialize(File.ReadAllBytes(Path), InPodJson.Default.ListCapturedPod) ?? [];
        }
        catch (JsonException ex)
        {
            throw new IOException($"pod registry {Path} is corrupt ({ex.Message}); move it aside to start without re-adopting pods", ex);
        }
    }

    public void Save(IEnumerable<CapturedPod> pods) =>
        AtomicFile.Write(Path, JsonSerializer.SerializeToUtf8Bytes(pods.ToList(), InPodJson.Default.ListCapturedPod));
}

internal static class AtomicFile
{
    /// <summary>Write to a temporary file in the same directory, fsync, rename: readers never see a partial file.</summary>
    public static void Write(string path, byte[] content)
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(content);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
