namespace Ambient.Cni.Commands;

/// <summary>VERSION: answered without reading or validating the config, as the spec allows any cniVersion here.</summary>
internal static class VersionCommand
{
    public static byte[] Run()
    {
        var result = new CniVersionResult(CniVersions.Latest, CniVersions.Supported);
        return JsonContext.ToLine(result, JsonContext.Default.CniVersionResult);
    }
}
