using System.Globalization;
using System.Text;

namespace Ambient.Ztunnel.Tests.InPod.Support;

/// <summary>A pod to start through the node's CNI chain. <paramref name="InConfig"/>: named by a config workload (enrolled).</summary>
internal sealed record PodSpec(string Node, string Name, string Namespace, string Ip, bool InConfig = true);

internal sealed record ClusterSpec
{
    public required string[] Nodes { get; init; }
    public required PodSpec[] Pods { get; init; }
    public string Firewall { get; init; } = "iptables";
    public string InboundCapture { get; init; } = "tproxy";
    /// <summary>Namespaces enrolled as a whole (<c>inpod.namespaces</c>): their pods need no config workload.</summary>
    public string[] EnrolledNamespaces { get; init; } = [];
    /// <summary><c>drainTimeout</c> of every agent; null = the agent's default.</summary>
    public TimeSpan? DrainTimeout { get; init; }
    /// <summary>Kubernetes manifests the agents also load (config key <c>manifests:</c>), watched; null for none.</summary>
    public string? Manifests { get; init; }
}

/// <summary>
/// Nodes and pods as network namespaces, built by scripts/topology.sh exactly as local-node.sh builds them (bridge +
/// host-local + ambient-cni through scripts/cni-exec.py), with one real agent process per node running inside the
/// node's namespace. Every name carries a prefix of its own (<c>ait</c>N, never <c>amb</c>) and everything lives under
/// a fresh /tmp directory, so clusters run side by side and next to local-node.sh; disposal removes all of it, also
/// after a failed start.
/// </summary>
internal sealed class InPodCluster : IAsyncDisposable
{
    public const string TrustDomain = "cluster.local";
    public static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);

    private static int s_next;
    private readonly List<Daemon> _agents = [];
    private readonly Dictionary<string, Daemon> _currentAgent = new(StringComparer.Ordinal);
    private readonly List<Daemon> _apps = [];
    private readonly Action<string> _log;

    private InPodCluster(ClusterSpec spec, string prefix, string root, Action<string> log)
    {
        Spec = spec;
        Prefix = prefix;
        Root = root;
        _log = log;
    }

    public ClusterSpec Spec { get; }

    public string Prefix { get; }

    public string Root { get; }

    public Daemon Agent(string node) => _currentAgent[node];

    public PodSpec Pod(string name) => Spec.Pods.Single(p => p.Name == name);

    public string NetnsPath(string suffix) => $"/var/run/netns/{Prefix}-{suffix}";

    public string PodNetns(string pod) => NetnsPath($"pod-{pod}");

    public string StateDir(string node) => Path.Combine(Root, node, "state");

    public static string Identity(PodSpec pod) => $"spiffe://{TrustDomain}/ns/{pod.Namespace}/sa/{(pod.InConfig ? pod.Name : "default")}";

    public static async Task<InPodCluster> StartAsync(ClusterSpec spec, Action<string>? log = null)
    {
        // Built first: a failed build should not leave namespaces behind.
        await Binaries.AmbientCniDllAsync();
        var (prefix, root) = Allocate();
        var cluster = new InPodCluster(spec, prefix, root, log ?? (_ => { }));
        try
        {
            await cluster.BuildAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A prefix no live namespace uses (a crashed earlier run may have left some) and at most six characters, since
    /// topology.sh names the fabric veths after its first six.
    /// </summary>
    private static (string Prefix, string Root) Allocate()
    {
        while (true)
        {
            int n = Interlocked.Increment(ref s_next);
            if (n > 999)
            {
                throw new InvalidOperationException("no free ait<N> prefix: remove stale namespaces with `ip netns list | grep ^ait`");
            }
            string prefix = $"ait{n}";
            bool used = Directory.Exists("/var/run/netns") && Directory.EnumerateFiles("/var/run/netns", $"{prefix}-*").Any();
            if (!used)
            {
                return (prefix, Directory.CreateTempSubdirectory($"{prefix}-").FullName);
            }
        }
    }

    private async Task BuildAsync()
    {
        await Binaries.InstallCniPluginAsync(Path.Combine(Root, "bin"));
        await Command.CheckAsync(Binaries.TopologyScript, ["up", Root, Prefix, .. Spec.Nodes], StepTimeout);
        await CreateCaAsync();
        if (Spec.Manifests is { } manifests)
        {
            Directory.CreateDirectory(ManifestDir);
            await WriteManifestsAsync(manifests);
        }
        foreach (var node in Spec.Nodes)
        {
            await File.WriteAllTextAsync(Path.Combine(Root, node, "ztunnel.yaml"), ConfigYaml(node));
        }
        foreach (var node in Spec.Nodes)
        {
            await StartAgentAsync(node);
        }
        foreach (var pod in Spec.Pods)
        {
            await AddPodAsync(pod);
        }
        _log($"cluster {Prefix} up in {Root}: nodes {string.Join(", ", Spec.Nodes)}; pods {string.Join(", ", Spec.Pods.Select(p => $"{p.Namespace}/{p.Name}@{p.Node}={p.Ip}"))}");
    }

    /// <summary>Polls <paramref name="condition"/> until it holds (at most 30 s): for what a watched file or a store change makes happen.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var settle = TimeSpan.FromSeconds(30);
        var deadline = DateTime.UtcNow + settle;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return;
            }
            await Task.Delay(150);
        }
        throw new TimeoutException($"{what}: not within {settle.TotalSeconds:0} s");
    }

    private string ManifestDir => Path.Combine(Root, "manifests");

    /// <summary>Replaces the manifests every agent watches, atomically (written aside, then renamed over), as an edit would.</summary>
    public async Task WriteManifestsAsync(string yaml)
    {
        string target = Path.Combine(ManifestDir, "mesh.yaml");
        string temp = Path.Combine(ManifestDir, ".mesh.yaml.tmp");
        await File.WriteAllTextAsync(temp, yaml);
        File.Move(temp, target, overwrite: true);
    }

    private async Task CreateCaAsync()
    {
        string key = Path.Combine(Root, "ca-key.pem");
        string cert = Path.Combine(Root, "ca-cert.pem");
        await Command.CheckAsync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], StepTimeout);
        await Command.CheckAsync("openssl", [
            "req", "-x509", "-new", "-key", key, "-days", "2", "-subj", $"/O={TrustDomain}/CN=Ambient in-pod test CA {Prefix}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", cert,
        ], StepTimeout);
    }

    private string ConfigYaml(string node)
    {
        var y = new StringBuilder();
        y.AppendLine(CultureInfo.InvariantCulture, $"trustDomain: {TrustDomain}");
        y.AppendLine("mode: inpod");
        if (Spec.DrainTimeout is { } drain)
        {
            y.AppendLine(CultureInfo.InvariantCulture, $"drainTimeout: {drain.TotalSeconds:0}s");
        }
        y.AppendLine("ca:");
        y.AppendLine(CultureInfo.InvariantCulture, $"  certFile: {Path.Combine(Root, "ca-cert.pem")}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  keyFile: {Path.Combine(Root, "ca-key.pem")}");
        y.AppendLine("inpod:");
        y.AppendLine(CultureInfo.InvariantCulture, $"  cniSocket: {Path.Combine(Root, node, "cni.sock")}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  enrollmentFile: {Path.Combine(Root, node, "enrollment.json")}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  firewall: {Spec.Firewall}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  inboundCapture: {Spec.InboundCapture}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  namespaces: [{string.Join(", ", Spec.EnrolledNamespaces)}]");
        if (Spec.Manifests is not null)
        {
            y.AppendLine(CultureInfo.InvariantCulture, $"manifests: [{ManifestDir}]");
        }
        y.AppendLine(Spec.Pods.Any(p => p.InConfig) ? "workloads:" : "workloads: []");
        foreach (var p in Spec.Pods.Where(p => p.InConfig))
        {
            y.AppendLine(CultureInfo.InvariantCulture, $"- uid: local//v1/Pod/{p.Namespace}/{p.Name}");
            y.AppendLine(CultureInfo.InvariantCulture, $"  name: {p.Name}");
            y.AppendLine(CultureInfo.InvariantCulture, $"  namespace: {p.Namespace}");
            y.AppendLine(CultureInfo.InvariantCulture, $"  serviceAccount: {p.Name}");
            y.AppendLine(CultureInfo.InvariantCulture, $"  workloadIps: [{p.Ip}]");
            y.AppendLine("  protocol: HBONE");
            y.AppendLine(CultureInfo.InvariantCulture, $"  node: {p.Node}");
        }
        return y.ToString();
    }

    /// <summary>Starts (or restarts, with the same config and state dir) the agent of <paramref name="node"/> inside its namespace, and waits until it is ready.</summary>
    public Task<Daemon> StartAgentAsync(string node) => StartAgentAsync(node, node);

    private int _successors;

    /// <summary>
    /// Starts a second agent for <paramref name="node"/> while the first still runs, as a DaemonSet rollout with
    /// <c>maxSurge: 1</c> does: same config, CNI socket and state directory, but a network namespace of its own (in a
    /// cluster each agent pod has its own, so their admin ports do not collide). Waits until it is ready.
    /// </summary>
    public async Task<Daemon> StartSuccessorAgentAsync(string node)
    {
        string suffix = await AddSuccessorNetnsAsync(node);
        return await StartAgentAsync(node, suffix);
    }

    /// <summary>
    /// Starts a second agent for <paramref name="node"/> as <see cref="StartSuccessorAgentAsync"/> does, with extra
    /// command-line arguments (for example a mesh source that cannot sync), and returns at once: it may never be ready.
    /// The node's current agent stays the first one.
    /// </summary>
    public async Task<Daemon> StartSuccessorAgentNoWaitAsync(string node, params string[] extraArgs)
    {
        string suffix = await AddSuccessorNetnsAsync(node);
        var agent = Daemon.Start($"ztunnel {node} ({suffix})", "nsenter", [.. AgentArgs(node, suffix), .. extraArgs]);
        _agents.Add(agent);
        return agent;
    }

    private async Task<string> AddSuccessorNetnsAsync(string node)
    {
        string suffix = $"{node}-next{Interlocked.Increment(ref _successors)}";
        await Command.CheckAsync("ip", ["netns", "add", $"{Prefix}-{suffix}"], StepTimeout);
        await ExecAsync(suffix, StepTimeout, "ip", "link", "set", "lo", "up");
        return suffix;
    }

    private string[] AgentArgs(string node, string netnsSuffix) =>
    [
        $"--net={NetnsPath(netnsSuffix)}", .. Binaries.Ztunnel(),
        "--config", Path.Combine(Root, node, "ztunnel.yaml"), "--node", node, "--state-dir", StateDir(node),
    ];

    private async Task<Daemon> StartAgentAsync(string node, string netnsSuffix)
    {
        var agent = Daemon.Start($"ztunnel {node} ({netnsSuffix})", "nsenter", AgentArgs(node, netnsSuffix));
        _agents.Add(agent);
        _currentAgent[node] = agent;
        // The agent logs this line after every listener (and, in-pod, every re-adopted pod) is up.
        await agent.WaitForLineAsync(l => l.Contains("ztunnel ready", StringComparison.Ordinal), StepTimeout, stderr: true);
        var ready = await ExecAsync(netnsSuffix, StepTimeout, "curl", "-sf", "--max-time", "5", "-o", "/dev/null", "http://127.0.0.1:15021/healthz/ready");
        if (!ready.Ok)
        {
            throw new InvalidOperationException($"agent on {node} logged ready but /healthz/ready failed: {ready}\n{agent.Describe()}");
        }
        return agent;
    }

    public Task<CommandResult> AddPodAsync(PodSpec pod) =>
        Command.CheckAsync(Binaries.TopologyScript, ["add-pod", Root, Prefix, pod.Node, pod.Name, pod.Namespace, pod.Ip], TimeSpan.FromSeconds(90));

    /// <summary>Runs the node's CNI chain (bridge, host-local, ambient-cni) with <paramref name="verb"/> for a pod, as the runtime would, leaving the netns alone.</summary>
    public Task<CommandResult> CniChainAsync(string verb, PodSpec pod) =>
        ExecAsync(pod.Node, TimeSpan.FromSeconds(90), "env", $"CNI_PATH={Path.Combine(Root, "bin")}:{RootFactAttribute.CniPluginDir}",
            "python3", Binaries.CniExecScript, verb, Path.Combine(Root, pod.Node, "cni.conflist"), PodNetns(pod.Name), $"cid-{pod.Name}", CniArgs(pod));

    /// <summary>Calls ambient-cni alone (not the whole chain) with the cached result of the chain's ADD as prevResult: a runtime retrying ADD.</summary>
    public async Task<CommandResult> RepeatAmbientCniAddAsync(PodSpec pod)
    {
        string conflist = Path.Combine(Root, pod.Node, "cni.conflist");
        string prevResult = await File.ReadAllTextAsync($"{conflist}.cid-{pod.Name}.result.json");
        string conf = $$"""
            {"cniVersion":"1.0.0","name":"ambient-local","type":"ambient-cni",
             "agentSocket":"{{Path.Combine(Root, pod.Node, "cni.sock")}}","enrollmentFile":"{{Path.Combine(Root, pod.Node, "enrollment.json")}}",
             "agentTimeoutSeconds":20,"prevResult":{{prevResult}}}
            """;
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD",
            ["CNI_CONTAINERID"] = $"cid-{pod.Name}",
            ["CNI_NETNS"] = PodNetns(pod.Name),
            ["CNI_IFNAME"] = "eth0",
            ["CNI_ARGS"] = CniArgs(pod),
            ["CNI_PATH"] = $"{Path.Combine(Root, "bin")}:{RootFactAttribute.CniPluginDir}",
        };
        return await Command.RunAsync(Path.Combine(Root, "bin", "ambient-cni"), [], TimeSpan.FromSeconds(60), stdin: conf, env: env);
    }

    private static string CniArgs(PodSpec pod) =>
        $"IgnoreUnknown=1;K8S_POD_NAME={pod.Name};K8S_POD_NAMESPACE={pod.Namespace};K8S_POD_UID=uid-{pod.Name};IP={pod.Ip}";

    /// <summary>Runs a command inside the namespace <c>PREFIX-suffix</c> (a node, <c>pod-NAME</c> or <c>fabric</c>).</summary>
    public Task<CommandResult> ExecAsync(string netnsSuffix, TimeSpan timeout, params string[] command) =>
        Command.RunAsync("nsenter", [$"--net={NetnsPath(netnsSuffix)}", .. command], timeout);

    public Task<CommandResult> InPodAsync(string pod, params string[] command) => ExecAsync($"pod-{pod}", StepTimeout, command);

    /// <summary>An HTTP request from a pod with curl; the canary, when given, travels in the path and a header.</summary>
    public Task<CommandResult> CurlAsync(string fromPod, string url, string? canary = null)
    {
        List<string> cmd = ["curl", "-sS", "--connect-timeout", "5", "--max-time", "15"];
        if (canary is not null)
        {
            cmd.AddRange(["-H", $"x-canary: {canary}"]);
        }
        cmd.Add(url);
        return InPodAsync(fromPod, [.. cmd]);
    }

    /// <summary>
    /// A TCP server app in a pod (Python): prints <c>ACCEPT peer</c> for every connection and <c>REQUEST line</c> for
    /// what it read, answers a minimal HTTP response. The log is how a test knows whether anything reached the app.
    /// </summary>
    public async Task<Daemon> StartServerAsync(string pod, int port)
    {
        string script = Path.Combine(Root, "tcp-server.py");
        if (!File.Exists(script))
        {
            await File.WriteAllTextAsync(script, ServerScript);
        }
        var app = Daemon.Start($"app {pod}:{port}", "nsenter", [$"--net={PodNetns(pod)}", "python3", "-u", script, port.ToString(CultureInfo.InvariantCulture), pod]);
        _apps.Add(app);
        await app.WaitForLineAsync(l => l == "LISTENING", StepTimeout);
        return app;
    }

    private const string ServerScript = """
        import socket, sys
        port, name = int(sys.argv[1]), sys.argv[2]
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        print("LISTENING", flush=True)
        while True:
            c, peer = s.accept()
            print(f"ACCEPT {peer[0]}:{peer[1]}", flush=True)
            c.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            print("REQUEST " + data.split(b"\r\n", 1)[0].decode(errors="replace"), flush=True)
            body = f"hello from {name}\n".encode()
            try:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            except OSError:
                pass
            c.close()
        """;

    /// <summary>The pod's TCP listening ports, as the kernel of its namespace reports them.</summary>
    public async Task<IReadOnlySet<int>> ListeningPortsAsync(string pod)
    {
        var r = await InPodAsync(pod, "ss", "-ltnH");
        if (!r.Ok)
        {
            throw new InvalidOperationException(r.ToString());
        }
        var ports = new HashSet<int>();
        foreach (var line in r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // State Recv-Q Send-Q Local:Port Peer:Port
            var cols = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (cols.Length >= 4 && int.TryParse(cols[3].AsSpan(cols[3].LastIndexOf(':') + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port))
            {
                ports.Add(port);
            }
        }
        return ports;
    }

    /// <summary>Sum of a Prometheus counter on a node's 15020 over the series whose labels include every pair given.</summary>
    public async Task<double> MetricAsync(string node, string name, params (string Label, string Value)[] labels)
    {
        var r = await ExecAsync(node, StepTimeout, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:15020/metrics");
        if (!r.Ok)
        {
            throw new InvalidOperationException(r.ToString());
        }
        double sum = 0;
        foreach (var line in r.Stdout.Split('\n'))
        {
            if (!line.StartsWith(name + "{", StringComparison.Ordinal))
            {
                continue;
            }
            if (labels.All(l => line.Contains($"{l.Label}=\"{l.Value}\"", StringComparison.Ordinal)))
            {
                sum += double.Parse(line.AsSpan(line.LastIndexOf(' ') + 1), CultureInfo.InvariantCulture);
            }
        }
        return sum;
    }

    public Task<PacketCapture> CaptureFabricAsync() => PacketCapture.StartAsync(NetnsPath("fabric"), "fabric0", Path.Combine(Root, $"fabric-{Guid.NewGuid():N}.pcap"));

    /// <summary>Everything the agents and apps printed, for a failing test's output.</summary>
    public string Describe() => string.Join('\n', _agents.Concat(_apps).Select(d => d.Describe()));

    public async ValueTask DisposeAsync()
    {
        var errors = new List<string>();
        foreach (var d in _apps.Concat(_agents))
        {
            await d.DisposeAsync();
        }
        try
        {
            // Also kills whatever still runs in the namespaces, deletes them and the root directory.
            var down = await Command.RunAsync(Binaries.TopologyScript, ["down", Root, Prefix], StepTimeout);
            if (!down.Ok)
            {
                errors.Add(down.ToString());
            }
        }
        catch (TimeoutException ex)
        {
            errors.Add(ex.Message);
        }
        var left = Directory.Exists("/var/run/netns") ? Directory.EnumerateFiles("/var/run/netns", $"{Prefix}-*").ToList() : [];
        foreach (var ns in left)
        {
            await Command.RunAsync("ip", ["netns", "del", Path.GetFileName(ns)], StepTimeout);
        }
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
        if (left.Count > 0)
        {
            errors.Add($"topology.sh down left {string.Join(", ", left)}");
        }
        if (errors.Count > 0)
        {
            throw new InvalidOperationException($"cleaning up cluster {Prefix}: {string.Join("; ", errors)}");
        }
    }
}
