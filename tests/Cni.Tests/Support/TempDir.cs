namespace Ambient.Cni.Tests.Support;

/// <summary>
/// A scratch directory under /tmp, removed on dispose. Kept short on purpose: a unix socket path must fit
/// in 107 bytes, which a deep test output path would not.
/// </summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("ambcni-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
