namespace Ambient.Cni;

/// <summary>
/// The <c>CNI_*</c> variables of one invocation (SPEC.md, "Parameters"). Read once; validated per command
/// because each verb has its own required set.
/// </summary>
internal sealed record CniEnvironment(
    string? Command,
    string? ContainerId,
    string? Netns,
    string? IfName,
    string? Args,
    string? Path)
{
    public static CniEnvironment FromProcess() => From(Environment.GetEnvironmentVariable);

    public static CniEnvironment From(Func<string, string?> get) => new(
        Blank(get("CNI_COMMAND")),
        Blank(get("CNI_CONTAINERID")),
        Blank(get("CNI_NETNS")),
        Blank(get("CNI_IFNAME")),
        Blank(get("CNI_ARGS")),
        Blank(get("CNI_PATH")));

    /// <summary>
    /// Throws code 4 naming every missing or malformed variable at once. CNI_PATH is not required: this
    /// plugin never delegates to another plugin, so refusing to run without it would only add a failure mode.
    /// </summary>
    public void Validate(CniCommand command)
    {
        var problems = new List<string>();
        bool attachment = command is CniCommand.Add or CniCommand.Del or CniCommand.Check;
        if (attachment)
        {
            if (ContainerId is null)
            {
                problems.Add("CNI_CONTAINERID is not set");
            }
            else if (!IsValidContainerId(ContainerId))
            {
                problems.Add($"CNI_CONTAINERID \"{ContainerId}\" must start with a letter or digit and contain only letters, digits, '_', '.', '-'");
            }

            if (IfName is null)
            {
                problems.Add("CNI_IFNAME is not set");
            }
            else if (!IsValidIfName(IfName))
            {
                problems.Add($"CNI_IFNAME \"{IfName}\" is not a valid Linux interface name (1-15 chars, no '/', ':' or whitespace, not '.' or '..')");
            }

            // DEL may come without a netns: the sandbox can already be gone (SPEC.md, DEL).
            if (Netns is null && command != CniCommand.Del)
            {
                problems.Add("CNI_NETNS is not set");
            }
        }

        if (problems.Count > 0)
        {
            throw new CniException(
                CniErrorCode.InvalidEnvironment,
                $"invalid environment for {command.ToWire()}: {string.Join("; ", problems)}",
                "ambient-cni is run by the container runtime, which sets the CNI_* variables; see ambient-cni --help");
        }
    }

    internal static bool IsValidContainerId(string id)
    {
        if (id.Length == 0 || !char.IsAsciiLetterOrDigit(id[0]))
        {
            return false;
        }

        foreach (char c in id)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '.' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    internal static bool IsValidIfName(string name)
    {
        // IFNAMSIZ is 16 including the terminating NUL.
        if (name.Length is 0 or > 15 || name is "." or "..")
        {
            return false;
        }

        foreach (char c in name)
        {
            if (c is '/' or ':' || char.IsWhiteSpace(c))
            {
                return false;
            }
        }

        return true;
    }

    private static string? Blank(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
