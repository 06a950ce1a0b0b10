using Ambient.Daemonset.Tests.Support;
using Ambient.InstallCni.Cli;
using Ambient.InstallCni.Conflist;

namespace Ambient.Daemonset.Tests.InstallCni;

/// <summary>A node's CNI directories in a temp dir, and the plugin binary the installer carries.</summary>
internal sealed class Node : IDisposable
{
    private readonly TempDir _dir = new();

    public Node()
    {
        ConfDir = _dir.Sub("net.d");
        BinDir = _dir.Sub("bin");
        Source = _dir.File("ambient-cni-source");
        File.WriteAllText(Source, "#!/bin/sh\necho ambient-cni v1\n");
    }

    public string Root => _dir.Path;

    public string ConfDir { get; }

    public string BinDir { get; }

    /// <summary>What install-cni copies (a stand-in binary: the copy is what is tested here).</summary>
    public string Source { get; }

    public string InstalledBinary => Path.Combine(BinDir, PluginEntry.PluginType);

    public string Conf(string name) => Path.Combine(ConfDir, name);

    public string Write(string name, string content)
    {
        string path = Conf(name);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>Every file in the conf dir with its content (to prove a refused file and its neighbours are untouched).</summary>
    public Dictionary<string, string> Snapshot() =>
        Directory.EnumerateFiles(ConfDir).ToDictionary(f => Path.GetFileName(f), File.ReadAllText);

    public InstallerOptions Options(PluginEntry? entry = null) => new()
    {
        CniConfDir = ConfDir,
        CniBinDir = BinDir,
        PluginBinary = Source,
        Entry = entry ?? Samples.Entry,
    };

    /// <summary>The arguments that point install-cni at this node.</summary>
    public string[] Args => ["--cni-conf-dir", ConfDir, "--cni-bin-dir", BinDir, "--plugin-binary", Source, "--exclude-namespaces", "kube-system,ambient-system"];

    public void Dispose() => _dir.Dispose();
}
