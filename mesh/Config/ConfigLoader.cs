using System.Collections.Immutable;

namespace Ambient.Mesh.Config;

public sealed record ConfigLoadResult(MeshConfig? Config, ImmutableArray<ConfigError> Errors)
{
    public bool Ok => Config is not null && Errors.IsEmpty;
}

/// <summary>
/// Reads the agent's YAML config: Istio ztunnel's local config unchanged plus the project keys.
/// Never throws for bad input: every problem becomes a <see cref="ConfigError"/> naming field and line.
/// </summary>
public static class ConfigLoader
{
    public static ConfigLoadResult LoadFile(string path) => throw new NotImplementedException();

    public static ConfigLoadResult Parse(string yaml, string fileName) => throw new NotImplementedException();
}
