namespace Ambient.Cni.Commands;

/// <summary>Everything one command needs, validated before the command runs.</summary>
internal sealed class CommandContext(
    CniCommand command,
    CniEnvironment environment,
    CniArgs args,
    CniConfig config,
    PluginLog log,
    CancellationToken cancellation)
{
    public CniCommand Command { get; } = command;
    public CniEnvironment Environment { get; } = environment;
    public CniArgs Args { get; } = args;
    public CniConfig Config { get; } = config;
    public PluginLog Log { get; } = log;
    public CancellationToken Cancellation { get; } = cancellation;
    public AgentClient Agent { get; } = new(config.AgentSocket, config.AgentTimeout);

    /// <summary>"ns/name" for messages, or the container id when the runtime gave no pod.</summary>
    public string PodLabel => Args.HasPod ? $"{Args.PodNamespace}/{Args.PodName}" : $"container {Environment.ContainerId}";

    /// <summary>Pods in an excluded namespace are never touched, not even by asking the agent.</summary>
    public bool IsExcludedNamespace =>
        Args.PodNamespace is { } ns && Contains(Config.ExcludeNamespaces, ns);

    public AgentRequest PodRequest(IReadOnlyList<string> ips) => new()
    {
        Command = Command.ToWire(),
        Pod = new AgentPod
        {
            Uid = Args.PodUid,
            Name = Args.PodName,
            Namespace = Args.PodNamespace,
            ContainerId = Environment.ContainerId!,
            Netns = Environment.Netns,
            IfName = Environment.IfName!,
            Ips = ips,
        },
    };

    private static bool Contains(IReadOnlyList<string> list, string value)
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (string.Equals(list[i], value, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
