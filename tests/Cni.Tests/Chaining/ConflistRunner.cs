using System.Text.Json.Nodes;
using Ambient.Cni.Tests.Support;

namespace Ambient.Cni.Tests.Chaining;

internal sealed record Attachment(string ContainerId, string Netns, string IfName, string CniArgs);

internal sealed class ChainFailedException(string plugin, string command, PluginRun run)
    : Exception($"{plugin} {command} failed (exit {run.ExitCode}): {run.Stdout} {run.Stderr}")
{
    public string Plugin { get; } = plugin;
    public PluginRun Run { get; } = run;
}

/// <summary>
/// The runtime side of a network configuration list, as SPEC.md "Network configuration lists" describes
/// it: ADD runs the plugins in order, each getting the list's name and cniVersion and the previous result;
/// CHECK runs in order and DEL in reverse, both with the chain's final ADD result as prevResult. A failed
/// ADD is followed by a DEL of the whole list, as libcni does, so nothing half-attached is left.
/// </summary>
internal sealed class ConflistRunner(Func<string, (string File, string[] Args)> resolve, string cniPath)
{
    private static readonly TimeSpan PluginTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Returns every plugin's ADD result in order; the last one is the chain's result.</summary>
    public async Task<IReadOnlyList<JsonObject>> AddAsync(JsonObject conflist, Attachment attachment)
    {
        var results = new List<JsonObject>();
        JsonObject? prev = null;
        foreach (var plugin in Plugins(conflist))
        {
            var run = await ExecAsync("ADD", conflist, plugin, prev, attachment);
            if (run.ExitCode != 0)
            {
                try
                {
                    await DelAsync(conflist, attachment, prev);
                }
                catch (ChainFailedException)
                {
                    // The ADD failure is the one to report.
                }

                throw new ChainFailedException(Type(plugin), "ADD", run);
            }

            prev = JsonNode.Parse(run.Stdout) as JsonObject
                ?? throw new ChainFailedException(Type(plugin), "ADD", run);
            results.Add(prev);
        }

        return results;
    }

    public async Task CheckAsync(JsonObject conflist, Attachment attachment, JsonObject cachedResult)
    {
        foreach (var plugin in Plugins(conflist))
        {
            var run = await ExecAsync("CHECK", conflist, plugin, cachedResult, attachment);
            if (run.ExitCode != 0)
            {
                throw new ChainFailedException(Type(plugin), "CHECK", run);
            }
        }
    }

    public async Task DelAsync(JsonObject conflist, Attachment attachment, JsonObject? cachedResult)
    {
        var plugins = Plugins(conflist);
        for (int i = plugins.Count - 1; i >= 0; i--)
        {
            var run = await ExecAsync("DEL", conflist, plugins[i], cachedResult, attachment);
            if (run.ExitCode != 0)
            {
                throw new ChainFailedException(Type(plugins[i]), "DEL", run);
            }
        }
    }

    private async Task<PluginRun> ExecAsync(string command, JsonObject conflist, JsonObject plugin, JsonObject? prevResult, Attachment attachment)
    {
        var config = (JsonObject)plugin.DeepClone();
        config["name"] = conflist["name"]!.DeepClone();
        config["cniVersion"] = conflist["cniVersion"]!.DeepClone();
        if (prevResult is not null)
        {
            config["prevResult"] = prevResult.DeepClone();
        }

        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = attachment.ContainerId,
            ["CNI_NETNS"] = attachment.Netns,
            ["CNI_IFNAME"] = attachment.IfName,
            ["CNI_ARGS"] = attachment.CniArgs,
            ["CNI_PATH"] = cniPath,
        };
        var (file, args) = resolve(Type(plugin));
        return await PluginProcess.RunExecutableAsync(file, args, env, config.ToJsonString(), PluginTimeout);
    }

    private static List<JsonObject> Plugins(JsonObject conflist) =>
        conflist["plugins"]!.AsArray().Select(p => p!.AsObject()).ToList();

    private static string Type(JsonObject plugin) => (string)plugin["type"]!;
}
