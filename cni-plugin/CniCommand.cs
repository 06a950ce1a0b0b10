namespace Ambient.Cni;

internal enum CniCommand
{
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

internal static class CniCommandNames
{
    /// <summary>The spec spells verbs in upper case; runtimes never send anything else, so match exactly.</summary>
    public static bool TryParse(string value, out CniCommand command)
    {
        switch (value)
        {
            case "ADD": command = CniCommand.Add; return true;
            case "DEL": command = CniCommand.Del; return true;
            case "CHECK": command = CniCommand.Check; return true;
            case "VERSION": command = CniCommand.Version; return true;
            case "STATUS": command = CniCommand.Status; return true;
            case "GC": command = CniCommand.Gc; return true;
            default: command = default; return false;
        }
    }

    public static string ToWire(this CniCommand command) => command switch
    {
        CniCommand.Add => "ADD",
        CniCommand.Del => "DEL",
        CniCommand.Check => "CHECK",
        CniCommand.Version => "VERSION",
        CniCommand.Status => "STATUS",
        CniCommand.Gc => "GC",
        _ => throw new ArgumentOutOfRangeException(nameof(command)),
    };
}
