using System.Collections.Immutable;

namespace Ambient.Mesh.Config;

/// <summary>
/// Watches a config file; a valid edit is handed to <c>onValid</c>, an invalid one to <c>onInvalid</c>
/// (the caller keeps its last good config). Debounces editors' write bursts.
/// </summary>
public sealed class ConfigWatcher : IDisposable
{
    public ConfigWatcher(string path, Action<MeshConfig> onValid, Action<ImmutableArray<ConfigError>> onInvalid)
    {
        throw new NotImplementedException();
    }

    public void Start() => throw new NotImplementedException();

    public void Dispose() => throw new NotImplementedException();
}
