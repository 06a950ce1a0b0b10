using System.Collections.Immutable;
using System.Text;

namespace Ambient.InstallCni.Conflist;

/// <summary>
/// The edits the installer makes to a CNI config file, as pure functions of its bytes. Insertion appends the
/// entry after the last plugin, copying the whitespace that separates the plugins already there; removal cuts
/// exactly those bytes again, so install followed by uninstall gives back the original file byte for byte.
/// </summary>
internal static class ConflistEditor
{
    /// <summary>
    /// The file with <paramref name="entry"/> as its last plugin and no other ambient-cni entry, or null when it
    /// already is exactly that (nothing to write). A single-plugin <c>.conf</c> comes back as a conflist
    /// (<see cref="Wrap"/>) with the entry appended. Throws <see cref="ConfigFormatException"/> for a file it
    /// will not edit.
    /// </summary>
    public static byte[]? Insert(byte[] file, bool isList, PluginEntry entry)
    {
        var layout = ConfigLayout.Parse(file, isList);
        if (!layout.IsList)
        {
            byte[] wrapped = Wrap(file, layout);
            return Append(wrapped, ConfigLayout.Parse(wrapped, isList: true), entry);
        }

        var ours = layout.Plugins.Where(p => p.IsOurs).ToList();
        if (ours.Count == 1 && ours[0] == layout.Plugins[^1])
        {
            PluginSpan last = ours[0];
            if (entry.SameAs(file.AsSpan(last.Start, last.End - last.Start)))
            {
                return null;
            }

            // Settings changed (an upgrade, a new flag): replace the entry where it is.
            byte[] rendered = Encoding.UTF8.GetBytes(entry.Render(IndentFor(Separator(file, layout, layout.Plugins.Length - 1))));
            return [.. file.AsSpan(0, last.Start), .. rendered, .. file.AsSpan(last.End)];
        }

        // Not there, there twice, or not last (another CNI appended after it): take every copy out, append one.
        byte[] without = RemoveAll(file, layout);
        return Append(without, ConfigLayout.Parse(without, isList: true), entry);
    }

    /// <summary>The conflist without any ambient-cni entry, or null when it has none.</summary>
    public static byte[]? Remove(byte[] conflist)
    {
        var layout = ConfigLayout.Parse(conflist, isList: true, requirePrimary: false);
        return layout.Plugins.Any(p => p.IsOurs) ? RemoveAll(conflist, layout) : null;
    }

    /// <summary>
    /// A single-plugin config as the one plugin of a conflist with the same name and cniVersion. The plugin's bytes
    /// are kept; only its lines are indented to sit inside the list (JSON strings cannot hold a raw newline, so
    /// this changes whitespace between tokens only).
    /// </summary>
    public static byte[] Wrap(byte[] conf, ConfigLayout layout)
    {
        string plugin = Encoding.UTF8.GetString(conf, layout.RootStart, layout.RootEnd - layout.RootStart);
        return Encoding.UTF8.GetBytes(WrapText(plugin.Replace("\n", "\n" + WrapIndent, StringComparison.Ordinal), layout));
    }

    /// <summary>
    /// The inverse of <see cref="Wrap"/>: the original single-plugin config when <paramref name="conflist"/> is
    /// exactly what <see cref="Wrap"/> made of it (used on uninstall to restore a converted <c>.conf</c>), else null.
    /// </summary>
    public static byte[]? Unwrap(byte[] conflist)
    {
        ConfigLayout layout;
        try
        {
            layout = ConfigLayout.Parse(conflist, isList: true);
        }
        catch (ConfigFormatException)
        {
            return null;
        }

        if (layout.Plugins.Length != 1)
        {
            return null;
        }

        var only = layout.Plugins[0];
        string indented = Encoding.UTF8.GetString(conflist, only.Start, only.End - only.Start);
        string plugin = indented.Replace("\n" + WrapIndent, "\n", StringComparison.Ordinal);
        byte[] conf = Encoding.UTF8.GetBytes(plugin + "\n");
        ConfigLayout confLayout;
        try
        {
            confLayout = ConfigLayout.Parse(conf, isList: false);
        }
        catch (ConfigFormatException)
        {
            return null;
        }

        return Wrap(conf, confLayout).AsSpan().SequenceEqual(conflist) ? conf : null;
    }

    private const string WrapIndent = "    ";

    private static string WrapText(string plugin, ConfigLayout layout) =>
        $"{{\n  \"cniVersion\": {layout.CniVersionJson},\n  \"name\": {layout.NameJson},\n  \"plugins\": [\n{WrapIndent}{plugin}\n  ]\n}}\n";

    private static byte[] Append(byte[] file, ConfigLayout layout, PluginEntry entry)
    {
        PluginSpan last = layout.Plugins[^1];
        string sep = Separator(file, layout, layout.Plugins.Length - 1);
        string rendered = entry.Render(IndentFor(sep));
        byte[] insert = Encoding.UTF8.GetBytes("," + sep + rendered);
        return [.. file.AsSpan(0, last.End), .. insert, .. file.AsSpan(last.End)];
    }

    /// <summary>
    /// Cuts every ambient-cni entry out, last first so earlier offsets stay valid. An entry after another plugin
    /// takes the bytes from the end of that plugin (the comma and whitespace <see cref="Append"/> added); a
    /// first entry takes the bytes up to the next plugin.
    /// </summary>
    private static byte[] RemoveAll(byte[] file, ConfigLayout layout)
    {
        byte[] result = file;
        var plugins = layout.Plugins;
        for (int i = plugins.Length - 1; i >= 0; i--)
        {
            if (!plugins[i].IsOurs)
            {
                continue;
            }

            (int from, int to) = i > 0
                ? (plugins[i - 1].End, plugins[i].End)
                : (plugins[i].Start, plugins.Length > 1 ? plugins[i + 1].Start : plugins[i].End);
            result = [.. result.AsSpan(0, from), .. result.AsSpan(to)];
            plugins = plugins.RemoveAt(i);
            int cut = to - from;
            plugins = plugins.Select((p, k) => k >= i ? p with { Start = p.Start - cut, End = p.End - cut } : p).ToImmutableArray();
        }

        return result;
    }

    /// <summary>The indentation of a plugin preceded by <paramref name="separator"/>; null when the plugins share one line.</summary>
    private static string? IndentFor(string separator) =>
        separator.Contains('\n', StringComparison.Ordinal) ? separator[(separator.LastIndexOf('\n') + 1)..] : null;

    /// <summary>The whitespace between plugin <paramref name="index"/> and the comma (or bracket) before it.</summary>
    private static string Separator(byte[] file, ConfigLayout layout, int index)
    {
        int from = index > 0 ? layout.Plugins[index - 1].End : layout.ArrayOpen + 1;
        int to = layout.Plugins[index].Start;
        string between = Encoding.UTF8.GetString(file, from, to - from);
        int comma = between.LastIndexOf(',');
        return comma >= 0 ? between[(comma + 1)..] : between;
    }
}
